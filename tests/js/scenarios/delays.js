// WebIDL long conversion: NaN, non-numeric and negative delays are 0; 2^31 wraps to a negative
// value (0); 2^32 + 3 wraps to 3. Due-now timers run in scheduling order. (Scheduled in
// increasing deadline order, so how long the scheduling takes cannot change the output.)
const log = [];
setTimeout(() => log.push('huge2^31'), 2 ** 31);
setTimeout(() => log.push('negative'), -50);
setTimeout(() => log.push('nan'), NaN);
setTimeout(() => log.push('string'), 'soon');
setTimeout(() => log.push('numeric-string'), '0');
setTimeout(() => log.push('wrap2^32+3'), 2 ** 32 + 3);
setTimeout(() => log.push('d20'), 20);
setTimeout(() => console.log(log.join(' ')), 60);
