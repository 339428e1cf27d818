// exit: 1
// stderr: Uncaught TypeError: bad microtask
// An error thrown by a queueMicrotask callback is uncaught (exit 1), like node; the microtask
// queued before it still ran.
queueMicrotask(() => console.log('first'));
queueMicrotask(() => { throw new TypeError('bad microtask'); });
setTimeout(() => console.log('never printed'), 20);
