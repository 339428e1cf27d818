// Qt's own Promise (V4) and queueMicrotask share one FIFO, drained at every loop checkpoint, so
// .then reactions interleave with queueMicrotask exactly as in a browser (or node). Without
// libloop's checkpoint hook V4 would print: callback qm1 qm2 immediate p1 p2 timeout0 p2b.
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
