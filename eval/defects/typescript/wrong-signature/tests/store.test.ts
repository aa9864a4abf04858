import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NoteStore } from '../src/store';
import { renderReport } from '../src/format/report';

test('byTag finds the notes with a tag', () => {
  const store = new NoteStore();
  store.add('Buy milk', ['home']);
  store.add('Write report', ['work']);
  assert.deepEqual(store.byTag('home').map((note) => note.title), ['Buy milk']);
});

test('the report lists a note with its tags', () => {
  const store = new NoteStore();
  store.add('Buy milk', ['home', 'errand']);
  assert.equal(renderReport(store.byTag('home')), '#1 Buy milk [home, errand]');
});
