// The checkpoint after the main script: promise reactions and queueMicrotask in one FIFO,
// including the jobs they queue themselves (same output as node).
const log = [];
Promise.resolve()
    .then(() => {
        log.push('a1');
        queueMicrotask(() => log.push('q-from-a1'));
    })
    .then(() => log.push('a2'));
queueMicrotask(() => {
    log.push('q1');
    Promise.resolve().then(() => log.push('p-from-q1'));
});
Promise.reject(new Error('x')).catch(() => log.push('caught'));
log.push('sync');
setTimeout(() => console.log(log.join(' ')), 10);
