// exit: 3
// args: alpha beta
// process.argv and process.exitCode; the run ends when nothing is pending.
console.log(process.argv.slice(2).join(','));
setTimeout(() => { process.exitCode = 3; console.log('done'); }, 5);
