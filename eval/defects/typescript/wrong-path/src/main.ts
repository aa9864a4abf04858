import { NoteStore } from './store';
import { renderReport } from './formats/report';

const store = new NoteStore();
store.add('Buy milk', ['home', 'errand']);
store.add('Write report', ['work']);
console.log(renderReport(store.byTag('home')));
