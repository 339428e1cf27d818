// exit: 1
// stderr: Uncaught ReferenceError
setTimeout(() => console.log('never printed'), 0);
console.log('first');
doesNotExist();
