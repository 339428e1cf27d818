// exit: 1
// stderr: Uncaught just a string
// A thrown non-Error value is still an uncaught error (not mistaken for a return value).
queueMicrotask(() => { throw 'just a string'; });
setTimeout(() => console.log('never printed'), 10);
