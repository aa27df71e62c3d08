//! `--init`: the reaper that runs as the container's PID 1 (`<shim_exe> init -- cmd...`),
//! as tini does for Docker. Single-threaded: it forks the command, forwards every signal
//! it gets to it, reaps every zombie, and exits with the command's status.

use std::ffi::CString;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{execvp, fork, ForkResult, Pid};

/// Run `args` under the reaper; returns the exit code to exit with.
pub fn run(args: &[String]) -> i32 {
    if args.is_empty() {
        eprintln!("init: no command given");
        return 2;
    }
    let argv: Vec<CString> = match args.iter().map(|a| CString::new(a.as_bytes())).collect() {
        Ok(v) => v,
        Err(_) => {
            eprintln!("init: argument holds a NUL byte");
            return 2;
        }
    };
    // Blocked signals are queued even for a namespace's PID 1, whose default-handled
    // signals from outside would otherwise be dropped; sigwait then picks them up.
    let all = SigSet::all();
    if let Err(e) = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None) {
        eprintln!("init: block signals: {e}");
        return 2;
    }
    // SAFETY: single-threaded here; the child only resets its signal state and execs.
    let child = match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let _ = nix::sys::signal::sigprocmask(
                SigmaskHow::SIG_SETMASK,
                Some(&SigSet::empty()),
                None,
            );
            // Rust ignores SIGPIPE at startup; the command gets the default back.
            // SAFETY: restoring a default disposition installs no handler.
            let _ = unsafe {
                nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl)
            };
            let err = execvp(&argv[0], &argv).unwrap_err();
            eprintln!("init: exec {}: {err}", args[0]);
            // SAFETY: leave the forked child without running the parent's exit handlers.
            unsafe {
                libc::_exit(if err == nix::errno::Errno::ENOENT {
                    127
                } else {
                    126
                })
            };
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => {
            eprintln!("init: fork: {e}");
            return 2;
        }
    };
    loop {
        let sig = match all.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        if sig != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(child, sig);
            continue;
        }
        if let Some(code) = reap(child) {
            return code;
        }
    }
}

/// Reap every exited process; the command's exit code once it is among them.
fn reap(child: Pid) -> Option<i32> {
    let mut result = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == child => result = Some(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => {
                result = Some(128 + sig as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return result,
            Ok(_) => {}
        }
    }
}
