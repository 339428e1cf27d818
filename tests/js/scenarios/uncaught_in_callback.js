// exit: 1
// stderr: Uncaught Error: boom
// stderr: uncaught_in_callback.js
// An error escaping a callback ends the run at once with exit code 1, like node.
setTimeout(() => console.log('before'), 0);
setTimeout(function fails() { throw new Error('boom'); }, 5);
setTimeout(() => console.log('never printed'), 30);
