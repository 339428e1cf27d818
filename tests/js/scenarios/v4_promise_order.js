// Qt's own JS Promise (V4) does not use the loop's microtask queue: its reactions are Qt posted
// events, sent when the dispatcher next processes events, i.e. after the current iteration's
// microtasks and check phase, one chain step per round. This scenario pins the measured order
// (a browser would print: callback qm1 p1 qm2 p2 p2b immediate timeout0).
const log = [];
setTimeout(() => {
    queueMicrotask(() => log.push('qm1'));
    Promise.resolve().then(() => log.push('p1'));
    queueMicrotask(() => log.push('qm2'));
    Promise.resolve().then(() => log.push('p2')).then(() => log.push('p2b'));
    setImmediate(() => log.push('immediate'));
    setTimeout(() => log.push('timeout0'), 0);
    log.push('callback');
}, 0);
setTimeout(() => console.log(log.join(' ')), 40);
