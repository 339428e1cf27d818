// Timers run in deadline order, equal deadlines in scheduling order. (Whether a setImmediate from
// the main script runs before a setTimeout 0 depends on how long the script took, as in node: see
// order_phases.js for the deterministic case.)
const log = [];
setTimeout(() => log.push('b10'), 10);
setTimeout(() => log.push('a5'), 5);
setTimeout(() => log.push('c10'), 10);
setTimeout(() => log.push('zero1'), 0);
setTimeout(() => log.push('zero2'));
setTimeout(() => console.log(log.join(' ')), 60);
