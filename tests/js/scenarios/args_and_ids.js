// Extra arguments reach the callback; ids are positive integers from one space.
const lines = [];
const a = setTimeout((x, y, z) => lines.push(['timeout', x, y, z].join(' ')), 1, 1, 'two', [3]);
const b = setInterval((s) => { lines.push('interval ' + s); clearInterval(b); }, 1, 'once');
const c = setImmediate((...r) => lines.push('immediate ' + r.length + ' ' + r[1]), 'p', 'q');
console.log(Number.isInteger(a) && a > 0, b === a + 1, c === b + 1);
setTimeout(() => console.log(lines.sort().join('\n')), 30);
