// Inside a timer callback: the callback, then its microtasks, then the check phase of the same
// iteration (setImmediate), then the next iteration's timers (setTimeout 0).
const log = [];
setTimeout(() => {
    setTimeout(() => log.push('timeout0'), 0);
    setImmediate(() => {
        log.push('immediate');
        queueMicrotask(() => log.push('immediate.microtask'));
    });
    queueMicrotask(() => {
        log.push('microtask1');
        queueMicrotask(() => log.push('microtask2'));
    });
    log.push('callback');
}, 0);
setTimeout(() => console.log(log.join('\n')), 40);
