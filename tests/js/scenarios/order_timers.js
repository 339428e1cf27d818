// Timers run in deadline order, equal deadlines in scheduling order. (Delays are listed in
// increasing order: a timer scheduled later with a shorter delay may or may not come first,
// depending on how long the scheduling itself took. Whether a setImmediate from the main script
// runs before a setTimeout 0 depends on that too, as in node: see order_phases.js for the
// deterministic case.)
const log = [];
setTimeout(() => log.push('zero1'), 0);
setTimeout(() => log.push('zero2'));
setTimeout(() => log.push('a5'), 5);
setTimeout(() => log.push('b10'), 10);
setTimeout(() => log.push('c10'), 10);
setTimeout(() => console.log(log.join(' ')), 60);
