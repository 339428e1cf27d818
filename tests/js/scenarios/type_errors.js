// A callback that is not a function throws a TypeError and schedules nothing.
for (const [name, call] of [
    ['setTimeout', () => setTimeout('code', 1)],
    ['setInterval', () => setInterval(undefined, 1)],
    ['setImmediate', () => setImmediate(null)],
    ['queueMicrotask', () => queueMicrotask(42)],
]) {
    try {
        call();
        console.log(name, 'did not throw');
    } catch (e) {
        console.log(name, e instanceof TypeError);
    }
}
