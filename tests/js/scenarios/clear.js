// clearTimeout/clearInterval are interchangeable; clearImmediate clears only immediates;
// unknown, fired and malformed ids are ignored; clearInterval inside its callback stops it.
const log = [];
const t = setTimeout(() => log.push('t must not run'), 1);
clearInterval(t);
const i = setInterval(() => log.push('i must not run'), 1);
clearTimeout(i);
const m = setImmediate(() => log.push('immediate ran'));
clearTimeout(m); // wrong kind: no effect
clearInterval(m);
const m2 = setImmediate(() => log.push('m2 must not run'));
clearImmediate(m2);
const keep = setTimeout(() => log.push('keep ran'), 1);
clearImmediate(keep); // wrong kind: no effect
for (const bad of [0, -1, 1.5, NaN, 'x', undefined, null, 2 ** 60])
    clearTimeout(bad);
let n = 0;
const iv = setInterval(() => {
    log.push('tick' + ++n);
    if (n === 3) clearInterval(iv);
}, 1);
setTimeout(() => console.log(log.join(' ')), 50);
