//! Writing to stdout and stderr without panicking.
//!
//! `println!` panics when stdout is a closed pipe (`warm list | head -1`) and `eprintln!`
//! when stderr is a full disk (a daemon's `daemon.log`). A command whose reader went away
//! ends quietly, as Unix tools do: there is nobody left to tell. A message that cannot be
//! written to stderr is dropped: failing the command for it would lose its real outcome.

/// Like `print!`; see the module documentation for what happens when stdout is gone.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let result = write!(std::io::stdout().lock(), $($arg)*);
        $crate::output::check(result);
    }};
}

/// Like `println!`; see the module documentation for what happens when stdout is gone.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let result = writeln!(std::io::stdout().lock(), $($arg)*);
        $crate::output::check(result);
    }};
}

/// Like `eprintln!`, but a stderr that cannot be written is ignored.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// Ends the process when stdout can no longer be written: exit 0 when the reader closed
/// the pipe, 1 for any other failure (a full disk), after saying so on stderr.
pub fn check(result: std::io::Result<()>) {
    let Err(error) = result else {
        return;
    };
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    errln!("warm: cannot write to stdout: {error}");
    std::process::exit(1);
}
