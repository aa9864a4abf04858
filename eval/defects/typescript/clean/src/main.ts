import { NoteStore } from './store';
import { renderReport } from './format/report';

const store = new NoteStore();
store.add('Buy milk', ['home', 'errand']);
store.add('Write report', ['work']);
console.log(renderReport(store.byTag('home')));
