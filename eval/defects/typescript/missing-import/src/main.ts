import { NoteStore } from './store';
import { renderSummary } from './format/report';

const store = new NoteStore();
store.add('Buy milk', ['home', 'errand']);
store.add('Write report', ['work']);
console.log(renderSummary(store.byTag('home')));
