//! Command-line errors and `--help` in the docker CLI's words, layouts and exit codes.
//!
//! clap parses; this module is the one place that turns what clap reports into what
//! docker (cobra + pflag + docker/cli's `cli/required.go`, `cli/cobra.go`) prints:
//!
//! ```text
//!   argv ──clap──> Ok(matches) ──> Cli
//!              └─> clap::Error ──map()──> Exit { stdout, stderr, code }
//!                                         flag errors       125  (FlagErrorFunc)
//!                                         argument counts     1  (required.go)
//!                                         unknown command     1
//!                                         --help              0  (usageTemplate, stdout)
//!                                         bare group          0  (the same, on stderr)
//! ```
//!
//! Our program is `swarm` where docker says `docker`. Everything here is decided
//! before a manager is contacted.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, Command};

/// What to print and the exit code, instead of running a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub stdout: String,
    pub stderr: String,
    pub code: u8,
}

/// Terminal width the docker CLI assumes when stdout is not a terminal.
const DEFAULT_TERM_WIDTH: usize = 80;

/// docker/cli's `flagsHelper.FormatHelp`, the `--format` help of list commands.
pub const LIST_FORMAT_HELP: &str = "Format output using a custom template:\n\
'table':            Print output in table format with column headers (default)\n\
'table TEMPLATE':   Print output in table format using the given Go template\n\
'json':             Print in JSON format\n\
'TEMPLATE':         Print output using the given Go template.\n\
Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates";

/// Docker's `Use` strings, where they say more than our positionals' names.
const USE_LINES: &[(&str, &str)] = &[
    ("service create", "[OPTIONS] IMAGE [COMMAND] [ARG...]"),
    ("service inspect", "[OPTIONS] SERVICE [SERVICE...]"),
    ("service logs", "[OPTIONS] SERVICE|TASK"),
    ("service ls", "[OPTIONS]"),
    ("service ps", "[OPTIONS] SERVICE [SERVICE...]"),
    ("service rm", "SERVICE [SERVICE...]"),
    ("service rollback", "[OPTIONS] SERVICE"),
    ("service scale", "SERVICE=REPLICAS [SERVICE=REPLICAS...]"),
    ("service update", "[OPTIONS] SERVICE"),
    ("node demote", "NODE [NODE...]"),
    ("node inspect", "[OPTIONS] self|NODE [NODE...]"),
    ("node ls", "[OPTIONS]"),
    ("node promote", "NODE [NODE...]"),
    ("node ps", "[OPTIONS] [NODE...]"),
    ("node rm", "[OPTIONS] NODE [NODE...]"),
    ("node update", "[OPTIONS] NODE"),
    ("secret create", "[OPTIONS] SECRET [file|-]"),
    ("secret inspect", "[OPTIONS] SECRET [SECRET...]"),
    ("secret ls", "[OPTIONS]"),
    ("secret rm", "SECRET [SECRET...]"),
    ("config create", "[OPTIONS] CONFIG file|-"),
    ("config inspect", "[OPTIONS] CONFIG [CONFIG...]"),
    ("config ls", "[OPTIONS]"),
    ("config rm", "CONFIG [CONFIG...]"),
    ("ca", "[OPTIONS]"),
    ("init", "[OPTIONS]"),
    ("join", "[OPTIONS] HOST:PORT"),
    ("join-token", "[OPTIONS] (worker|manager)"),
    ("leave", "[OPTIONS]"),
    ("unlock", ""),
    ("unlock-key", "[OPTIONS]"),
    ("update", "[OPTIONS]"),
    ("info", "[OPTIONS]"),
    ("events", "[OPTIONS]"),
    ("image load", "[OPTIONS]"),
];

/// Parses `args` (program name first) into `P`, or says what docker would print.
pub fn parse_from<P: clap::Parser>(args: &[OsString]) -> Result<P, Exit> {
    let mut root = pflag_values(P::command());
    root.build();
    let words: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let path = command_path(&root, &words);
    let result = root
        .clone()
        .try_get_matches_from(args)
        .and_then(|m| <P as clap::FromArgMatches>::from_arg_matches(&m));
    result.map_err(|e| map_error(&e, &root, &path, &words))
}

/// pflag takes the word after a value flag as its value whatever it starts with
/// (`--replicas -1` is an invalid value, not an unknown flag `-1`).
fn pflag_values(cmd: Command) -> Command {
    cmd.mut_args(|a| {
        if takes_value(&a) && !optional_value(&a) && !a.is_positional() {
            a.allow_hyphen_values(true)
        } else {
            a
        }
    })
    .mut_subcommands(pflag_values)
}

/// Parses the process's arguments, or prints docker's words and exits.
pub fn parse_or_exit<P: clap::Parser>() -> P {
    let args: Vec<OsString> = std::env::args_os().collect();
    match parse_from::<P>(&args) {
        Ok(p) => p,
        Err(exit) => {
            use std::io::Write;
            print!("{}", exit.stdout);
            eprint!("{}", exit.stderr);
            let _ = std::io::stdout().flush();
            std::process::exit(i32::from(exit.code));
        }
    }
}

/// The subcommand names `words` select, from the root (`["service", "create"]`).
/// `swarm help service create` selects `["service", "create"]`.
fn command_path(root: &Command, words: &[String]) -> Vec<String> {
    let mut path = Vec::new();
    let mut cur = root;
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        if w == "--" {
            break;
        }
        if w.starts_with('-') && w.len() > 1 {
            if flag_takes_separate_value(cur, w) {
                i += 1;
            }
            i += 1;
            continue;
        }
        if path.is_empty() && w == "help" {
            return command_path(root, &words[i + 1..]);
        }
        match cur.find_subcommand(w) {
            Some(sub) if cur.has_subcommands() => {
                path.push(sub.get_name().to_string());
                cur = sub;
            }
            _ => break,
        }
        i += 1;
    }
    path
}

/// Whether `word` (`-H`, `--host`) is a flag of `cmd` whose value is the next word.
fn flag_takes_separate_value(cmd: &Command, word: &str) -> bool {
    let arg = if let Some(long) = word.strip_prefix("--") {
        if long.contains('=') {
            return false;
        }
        cmd.get_arguments().find(|a| a.get_long() == Some(long))
    } else {
        let mut cs = word.chars().skip(1);
        match (cs.next(), cs.next()) {
            (Some(c), None) => cmd.get_arguments().find(|a| a.get_short() == Some(c)),
            _ => None,
        }
    };
    arg.is_some_and(|a| takes_value(a) && !optional_value(a))
}

fn takes_value(a: &Arg) -> bool {
    a.get_action().takes_values() && a.get_num_args().is_none_or(|n| n.max_values() > 0)
}

/// `--detach`, `--detach=false`: pflag's booleans, which we declare with an optional
/// value.
fn optional_value(a: &Arg) -> bool {
    a.get_num_args().is_some_and(|n| n.min_values() == 0)
}

fn find<'a>(root: &'a Command, path: &[String]) -> &'a Command {
    let mut cur = root;
    for p in path {
        match cur.find_subcommand(p) {
            Some(c) => cur = c,
            None => break,
        }
    }
    cur
}

/// `swarm service create`.
fn command_path_string(root: &Command, path: &[String]) -> String {
    std::iter::once(root.get_name().to_string())
        .chain(path.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// cobra's `UseLine`: the path, then docker's `Use` after the name.
fn use_line(root: &Command, path: &[String]) -> String {
    let cmd = find(root, path);
    let full = command_path_string(root, path);
    let spec = use_spec(root, path);
    if cmd.has_subcommands() || spec.is_empty() {
        full
    } else {
        format!("{full} {spec}")
    }
}

fn use_spec(root: &Command, path: &[String]) -> String {
    let key = path.join(" ");
    // `swarm swarm init` and `swarm init` share one spec; so do `system info` and `info`.
    let short = match path {
        [group, rest @ ..] if group == "swarm" || group == "system" => rest.join(" "),
        _ => key.clone(),
    };
    if let Some((_, spec)) = USE_LINES.iter().find(|(k, _)| *k == key || *k == short) {
        return spec.to_string();
    }
    let cmd = find(root, path);
    let mut parts = Vec::new();
    if flags(cmd).next().is_some() {
        parts.push("[OPTIONS]".to_string());
    }
    for p in cmd.get_positionals() {
        let name = p
            .get_value_names()
            .and_then(|n| n.first())
            .map(|n| n.to_string())
            .unwrap_or_else(|| p.get_id().as_str().to_uppercase());
        let many = p.get_num_args().is_some_and(|n| n.max_values() > 1);
        let mut s = if many {
            format!("{name} [{name}...]")
        } else {
            name
        };
        if !p.is_required_set() {
            s = format!("[{s}]");
        }
        parts.push(s);
    }
    parts.join(" ")
}

/// The flags a command lists under `Options:`: its own, not the root's globals, not
/// help/version (hidden in docker), sorted by long name as pflag does.
fn flags(cmd: &Command) -> impl Iterator<Item = &Arg> {
    let mut v: Vec<&Arg> = cmd
        .get_arguments()
        .filter(|a| !a.is_positional() && !a.is_global_set() && !a.is_hide_set())
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
        .collect();
    v.sort_by_key(|a| a.get_long().map(str::to_string).unwrap_or_default());
    v.into_iter()
}

/// Docker's rule for a command's positional arguments, derived from clap's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArgRule {
    None,
    Exact(usize),
    Min(usize),
    Max(usize),
    Range(usize, usize),
}

fn arg_rule(cmd: &Command) -> ArgRule {
    let mut min = 0;
    let mut max = Some(0usize);
    for p in cmd.get_positionals() {
        let n = p.get_num_args().unwrap_or_else(|| 1.into());
        if p.is_required_set() {
            min += n.min_values().max(1);
        }
        max = match (max, n.max_values()) {
            (Some(m), usize::MAX) => {
                let _ = m;
                None
            }
            (Some(m), x) => Some(m + x),
            (None, _) => None,
        };
    }
    match max {
        Some(0) => ArgRule::None,
        Some(m) if m == min => ArgRule::Exact(m),
        None => ArgRule::Min(min),
        Some(m) if min == 0 => ArgRule::Max(m),
        Some(m) => ArgRule::Range(min, m),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        "argument"
    } else {
        "arguments"
    }
}

/// `cli/required.go`'s messages for a wrong number of positional arguments.
fn args_error(root: &Command, path: &[String]) -> String {
    let bin = root.get_name();
    let full = command_path_string(root, path);
    let usage = use_line(root, path);
    let (what, see) = match arg_rule(find(root, path)) {
        ArgRule::None => ("accepts no arguments".to_string(), "Run"),
        ArgRule::Exact(n) => (format!("requires {n} {}", plural(n)), "Run"),
        ArgRule::Min(n) => (format!("requires at least {n} {}", plural(n)), "See"),
        ArgRule::Max(n) => (format!("requires at most {n} {}", plural(n)), "Run"),
        ArgRule::Range(a, b) => (
            format!("requires at least {a} and at most {b} {}", plural(b)),
            "Run",
        ),
    };
    format!(
        "{bin}: '{full}' {what}\n\nUsage:  {usage}\n\n{see} '{full} --help' for more information\n"
    )
}

/// cli/cobra.go's `FlagErrorFunc`: pflag's message, the usage line, exit 125.
fn flag_error(root: &Command, path: &[String], msg: &str) -> Exit {
    Exit {
        stdout: String::new(),
        stderr: format!(
            "{msg}\n\nUsage:  {}\n\nRun '{} --help' for more information\n",
            use_line(root, path),
            command_path_string(root, path)
        ),
        code: 125,
    }
}

fn context_str(e: &clap::Error, kind: ContextKind) -> Option<String> {
    match e.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => v.first().cloned(),
        _ => None,
    }
}

/// `--replicas <uint>` -> the `--replicas` argument of `cmd`.
fn arg_named<'a>(cmd: &'a Command, described: &str) -> Option<&'a Arg> {
    let word = described.split(['=', ' ', '[']).next().unwrap_or(described);
    if let Some(long) = word.strip_prefix("--") {
        cmd.get_arguments().find(|a| a.get_long() == Some(long))
    } else if let Some(short) = word.strip_prefix('-') {
        let c = short.chars().next()?;
        cmd.get_arguments().find(|a| a.get_short() == Some(c))
    } else {
        None
    }
}

/// pflag's name of a flag in messages: `-d, --detach` or `--replicas`.
fn flag_display(a: &Arg) -> String {
    match (a.get_short(), a.get_long()) {
        (Some(s), Some(l)) => format!("-{s}, --{l}"),
        (None, Some(l)) => format!("--{l}"),
        (Some(s), None) => format!("-{s}"),
        (None, None) => a.get_id().to_string(),
    }
}

/// The reason pflag gives for a value its type refuses (Go's strconv/time words).
fn invalid_reason(a: &Arg, value: &str, clap_reason: Option<String>) -> String {
    let ty = a
        .get_value_names()
        .and_then(|n| n.first())
        .map(|n| n.to_string())
        .unwrap_or_default();
    let bool_like = a
        .get_possible_values()
        .iter()
        .any(|p| p.get_name() == "true");
    match ty.as_str() {
        _ if bool_like => format!("strconv.ParseBool: parsing \"{value}\": invalid syntax"),
        "uint" | "uint64" => format!("strconv.ParseUint: parsing \"{value}\": invalid syntax"),
        "int" | "int64" => format!("strconv.ParseInt: parsing \"{value}\": invalid syntax"),
        "float" => format!("strconv.ParseFloat: parsing \"{value}\": invalid syntax"),
        "duration" => format!("time: invalid duration \"{value}\""),
        _ => clap_reason.unwrap_or_else(|| "invalid syntax".to_string()),
    }
}

/// clap's error -> docker's words and exit code.
fn map_error(e: &clap::Error, root: &Command, path: &[String], words: &[String]) -> Exit {
    let cmd = find(root, path);
    let invalid_arg = context_str(e, ContextKind::InvalidArg);
    match e.kind() {
        ErrorKind::DisplayHelp => Exit {
            stdout: help(root, path),
            stderr: String::new(),
            code: 0,
        },
        // A bare group (`docker service`): the same text, on stderr, exit 0.
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            Exit {
                stdout: String::new(),
                stderr: help(root, path),
                code: 0,
            }
        }
        ErrorKind::DisplayVersion => Exit {
            stdout: e.to_string(),
            stderr: String::new(),
            code: 0,
        },
        ErrorKind::InvalidSubcommand => {
            let bad = context_str(e, ContextKind::InvalidSubcommand).unwrap_or_default();
            let full = command_path_string(root, path);
            let usage = if path.is_empty() {
                String::new()
            } else {
                format!("\n\nUsage:  {}", use_line(root, path))
            };
            Exit {
                stdout: String::new(),
                stderr: format!(
                    "{}: unknown command: {full} {bad}{usage}\n\nRun '{full} --help' for more information\n",
                    root.get_name()
                ),
                code: 1,
            }
        }
        ErrorKind::UnknownArgument => {
            let bad = invalid_arg.unwrap_or_default();
            if bad.starts_with('-') && bad.len() > 1 {
                flag_error(root, path, &unknown_flag(&bad, words))
            } else if cmd.has_subcommands() {
                // A word where a subcommand was expected.
                let full = command_path_string(root, path);
                Exit {
                    stdout: String::new(),
                    stderr: format!(
                        "{}: unknown command: {full} {bad}\n\nUsage:  {}\n\nRun '{full} --help' for more information\n",
                        root.get_name(),
                        use_line(root, path)
                    ),
                    code: 1,
                }
            } else {
                Exit {
                    stdout: String::new(),
                    stderr: args_error(root, path),
                    code: 1,
                }
            }
        }
        ErrorKind::MissingRequiredArgument => {
            let missing = invalid_arg.unwrap_or_default();
            if missing.starts_with('-') {
                let name = arg_named(cmd, &missing)
                    .and_then(|a| a.get_long().map(str::to_string))
                    .unwrap_or(missing);
                Exit {
                    stdout: String::new(),
                    stderr: format!("required flag(s) \"{name}\" not set\n"),
                    code: 1,
                }
            } else {
                Exit {
                    stdout: String::new(),
                    stderr: args_error(root, path),
                    code: 1,
                }
            }
        }
        ErrorKind::WrongNumberOfValues | ErrorKind::TooManyValues | ErrorKind::TooFewValues
            if invalid_arg.as_deref().is_some_and(|a| !a.starts_with('-')) =>
        {
            Exit {
                stdout: String::new(),
                stderr: args_error(root, path),
                code: 1,
            }
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let described = invalid_arg.unwrap_or_default();
            let value = context_str(e, ContextKind::InvalidValue).unwrap_or_default();
            let Some(arg) = arg_named(cmd, &described) else {
                return flag_error(root, path, &clap_message(e));
            };
            if value.is_empty() && e.kind() == ErrorKind::InvalidValue && takes_value(arg) {
                let name = match (arg.get_long(), arg.get_short()) {
                    (Some(l), _) if described.starts_with("--") => format!("--{l}"),
                    (_, Some(s)) => format!("'{s}' in -{s}"),
                    (Some(l), None) => format!("--{l}"),
                    (None, None) => described.clone(),
                };
                return flag_error(root, path, &format!("flag needs an argument: {name}"));
            }
            let reason = std::error::Error::source(e).map(|s| s.to_string());
            flag_error(
                root,
                path,
                &format!(
                    "invalid argument \"{value}\" for \"{}\" flag: {}",
                    flag_display(arg),
                    invalid_reason(arg, &value, reason)
                ),
            )
        }
        _ => flag_error(root, path, &clap_message(e)),
    }
}

/// pflag's unknown-flag message. For a cluster of shorthands (`-dz`) pflag names the
/// first unknown letter (`'z' in -z`) as docker prints it.
fn unknown_flag(bad: &str, words: &[String]) -> String {
    if let Some(long) = bad.strip_prefix("--") {
        let name = long.split('=').next().unwrap_or(long);
        return format!("unknown flag: --{name}");
    }
    let letter = bad.trim_start_matches('-').chars().next().unwrap_or('-');
    let _ = words;
    format!("unknown shorthand flag: '{letter}' in -{letter}")
}

/// clap's own message, first line, without its `error: ` prefix.
fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

/// Docker's `--help` (cli/cobra.go's usageTemplate) for the command at `path`.
pub fn help(root: &Command, path: &[String]) -> String {
    let cmd = find(root, path);
    let full = command_path_string(root, path);
    let mut out = String::new();
    if cmd.has_subcommands() {
        let opts = if path.is_empty() { " [OPTIONS]" } else { "" };
        out.push_str(&format!("Usage:  {full}{opts} COMMAND\n"));
    } else {
        out.push_str(&format!("Usage:  {}\n", use_line(root, path)));
    }
    let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
    out.push_str(&format!("\n{}\n", about.trim()));
    let aliases: Vec<&str> = cmd.get_visible_aliases().collect();
    if !aliases.is_empty() {
        let parent = command_path_string(root, &path[..path.len().saturating_sub(1)]);
        let mut line = full.clone();
        for a in aliases {
            line.push_str(&format!(", {parent} {a}"));
        }
        out.push_str(&format!("\nAliases:\n  {line}\n"));
    }
    if !path.is_empty() {
        let opts: Vec<&Arg> = flags(cmd).collect();
        if !opts.is_empty() {
            out.push_str("\nOptions:\n");
            out.push_str(&flag_usages(&opts, DEFAULT_TERM_WIDTH - 1));
        }
    }
    if cmd.has_subcommands() {
        let subs: Vec<&Command> = {
            let mut v: Vec<&Command> = cmd
                .get_subcommands()
                .filter(|c| !c.is_hide_set() && c.get_name() != "help")
                .collect();
            v.sort_by_key(|c| c.get_name().to_string());
            v
        };
        let pad = subs
            .iter()
            .map(|c| c.get_name().len())
            .max()
            .unwrap_or(0)
            .max(11);
        let list = |title: &str, items: &[&&Command], out: &mut String| {
            if items.is_empty() {
                return;
            }
            out.push_str(&format!("\n{title}:\n"));
            for c in items {
                let about = c.get_about().map(|a| a.to_string()).unwrap_or_default();
                out.push_str(&format!("  {:<pad$} {}\n", c.get_name(), about.trim()));
            }
        };
        if path.is_empty() {
            const SWARM: &[&str] = &["config", "node", "secret", "service", "stack", "swarm"];
            let management: Vec<&&Command> = subs
                .iter()
                .filter(|c| c.has_subcommands() && !SWARM.contains(&c.get_name()))
                .collect();
            let swarm: Vec<&&Command> = subs
                .iter()
                .filter(|c| SWARM.contains(&c.get_name()))
                .collect();
            let plain: Vec<&&Command> = subs.iter().filter(|c| !c.has_subcommands()).collect();
            list("Management Commands", &management, &mut out);
            list("Swarm Commands", &swarm, &mut out);
            list("Commands", &plain, &mut out);
            let globals: Vec<&Arg> = {
                let mut v: Vec<&Arg> = cmd
                    .get_arguments()
                    .filter(|a| !a.is_positional() && !a.is_hide_set())
                    .filter(|a| a.get_id().as_str() != "help")
                    .collect();
                v.sort_by_key(|a| a.get_long().map(str::to_string).unwrap_or_default());
                v
            };
            if !globals.is_empty() {
                out.push_str("\nGlobal Options:\n");
                out.push_str(&flag_usages(&globals, DEFAULT_TERM_WIDTH - 1));
            }
        } else {
            let all: Vec<&&Command> = subs.iter().collect();
            list("Commands", &all, &mut out);
        }
        out.push_str(&format!(
            "\nRun '{full} COMMAND --help' for more information on a command.\n"
        ));
    }
    out
}

/// pflag's `FlagUsagesWrapped(cols)`: `  -s, --long type   usage`, usages aligned and
/// wrapped at `cols`.
fn flag_usages(args: &[&Arg], cols: usize) -> String {
    let mut lines = Vec::new();
    let mut maxlen = 0;
    for a in args {
        let mut line = match (a.get_short(), a.get_long()) {
            (Some(s), Some(l)) => format!("  -{s}, --{l}"),
            (None, Some(l)) => format!("      --{l}"),
            (Some(s), None) => format!("  -{s}"),
            (None, None) => continue,
        };
        if takes_value(a) && !optional_value(a) {
            let ty = a
                .get_value_names()
                .and_then(|n| n.first())
                .map(|n| n.to_string())
                .unwrap_or_else(|| "string".to_string());
            line.push(' ');
            line.push_str(&ty);
        }
        maxlen = maxlen.max(line.len());
        let usage = a.get_help().map(|h| h.to_string()).unwrap_or_default();
        lines.push((line, usage));
    }
    let mut out = String::new();
    for (line, usage) in lines {
        let spacing = " ".repeat(maxlen - line.len());
        let text = wrap(maxlen + 3, cols, &usage);
        out.push_str(&format!("{line}{spacing}   {text}"));
        // trimRightSpace only trims the end of the whole block; each line keeps
        // what pflag printed.
        out.push('\n');
    }
    out
}

/// pflag's `wrap(i, w, s)`: wraps `s` to the width `w`, continuation lines indented
/// by `i`.
fn wrap(i: usize, w: usize, s: &str) -> String {
    let mut i = i;
    let mut r = String::new();
    if w == 0 {
        return s.replace('\n', &format!("\n{}", " ".repeat(i)));
    }
    let mut width = w as isize - i as isize;
    if width < 24 {
        i = 16;
        width = w as isize - i as isize;
        r.push('\n');
        r.push_str(&" ".repeat(i));
    }
    if width < 24 {
        return s.replace('\n', &r);
    }
    let slop = 5;
    let width = width as usize - slop;
    let indent = " ".repeat(i);
    let (l, mut rest) = wrap_n(width, slop, s);
    r.push_str(&l.replace('\n', &format!("\n{indent}")));
    while !rest.is_empty() {
        let (t, s2) = wrap_n(width, slop, rest);
        r.push('\n');
        r.push_str(&indent);
        r.push_str(&t.replace('\n', &format!("\n{indent}")));
        rest = s2;
    }
    r
}

fn wrap_n(i: usize, slop: usize, s: &str) -> (&str, &str) {
    if i + slop > s.len() {
        return (s, "");
    }
    let mut cut = i;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    let head = &s[..cut];
    let Some(w) = head.rfind([' ', '\t', '\n']).filter(|&w| w > 0) else {
        return (s, "");
    };
    if let Some(nl) = head.rfind('\n').filter(|&n| n > 0 && n < w) {
        return (&s[..nl], &s[nl + 1..]);
    }
    (&s[..w], &s[w + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cli;

    fn run(args: &[&str]) -> Exit {
        let args: Vec<OsString> = std::iter::once("swarm")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        match parse_from::<Cli>(&args) {
            Ok(_) => Exit {
                stdout: "parsed".into(),
                stderr: String::new(),
                code: 0,
            },
            Err(e) => e,
        }
    }

    const CREATE_USAGE: &str =
        "\n\nUsage:  swarm service create [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'swarm service create --help' for more information\n";

    #[test]
    fn unknown_flags_long_and_short() {
        let e = run(&["service", "create", "--repliaces", "3", "busybox"]);
        assert_eq!(e.code, 125);
        assert_eq!(e.stderr, format!("unknown flag: --repliaces{CREATE_USAGE}"));
        let e = run(&["service", "create", "-z", "busybox"]);
        assert_eq!(
            e.stderr,
            format!("unknown shorthand flag: 'z' in -z{CREATE_USAGE}")
        );
        let e = run(&["service", "create", "-dz", "busybox"]);
        assert_eq!(
            e.stderr,
            format!("unknown shorthand flag: 'z' in -z{CREATE_USAGE}")
        );
        assert_eq!(e.code, 125);
    }

    #[test]
    fn flag_values() {
        let e = run(&["service", "create", "--replicas", "x", "nginx"]);
        assert_eq!(e.code, 125);
        assert_eq!(
            e.stderr,
            format!("invalid argument \"x\" for \"--replicas\" flag: strconv.ParseUint: parsing \"x\": invalid syntax{CREATE_USAGE}")
        );
        let e = run(&["service", "create", "--detach=foo", "nginx"]);
        assert_eq!(
            e.stderr,
            format!("invalid argument \"foo\" for \"-d, --detach\" flag: strconv.ParseBool: parsing \"foo\": invalid syntax{CREATE_USAGE}")
        );
        let e = run(&["service", "create", "--replicas"]);
        assert_eq!(e.code, 125);
        assert_eq!(
            e.stderr,
            format!("flag needs an argument: --replicas{CREATE_USAGE}")
        );
    }

    #[test]
    fn argument_counts() {
        let e = run(&["service", "create"]);
        assert_eq!(e.code, 1);
        assert_eq!(
            e.stderr,
            "swarm: 'swarm service create' requires at least 1 argument\n\nUsage:  swarm service create [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nSee 'swarm service create --help' for more information\n"
        );
        let e = run(&["node", "ls", "extra"]);
        assert_eq!(
            e.stderr,
            "swarm: 'swarm node ls' accepts no arguments\n\nUsage:  swarm node ls [OPTIONS]\n\nRun 'swarm node ls --help' for more information\n"
        );
        let e = run(&["swarm", "join-token"]);
        assert_eq!(
            e.stderr,
            "swarm: 'swarm swarm join-token' requires 1 argument\n\nUsage:  swarm swarm join-token [OPTIONS] (worker|manager)\n\nRun 'swarm swarm join-token --help' for more information\n"
        );
        let e = run(&["system", "info", "x"]);
        assert_eq!(
            e.stderr,
            "swarm: 'swarm system info' accepts no arguments\n\nUsage:  swarm system info [OPTIONS]\n\nRun 'swarm system info --help' for more information\n"
        );
        assert_eq!(e.code, 1);
    }

    #[test]
    fn unknown_commands_and_bare_groups() {
        let e = run(&["service", "frob"]);
        assert_eq!(e.code, 1);
        assert_eq!(
            e.stderr,
            "swarm: unknown command: swarm service frob\n\nUsage:  swarm service\n\nRun 'swarm service --help' for more information\n"
        );
        let e = run(&["frob"]);
        assert_eq!(
            e.stderr,
            "swarm: unknown command: swarm frob\n\nRun 'swarm --help' for more information\n"
        );
        let e = run(&["service"]);
        assert_eq!(e.code, 0);
        assert!(e.stderr.starts_with("Usage:  swarm service COMMAND\n\nManage Swarm services\n\nCommands:\n  create      Create a new service\n"), "{}", e.stdout);
        assert!(e.stderr.ends_with(
            "\nRun 'swarm service COMMAND --help' for more information on a command.\n"
        ));
    }

    #[test]
    fn everything_after_the_image_is_the_command() {
        let parse = |args: &[&str]| {
            let args: Vec<OsString> = ["swarm", "service", "create"]
                .iter()
                .chain(args)
                .map(OsString::from)
                .collect();
            match parse_from::<Cli>(&args).unwrap().command {
                crate::Command::Service(crate::service::ServiceCommand::Create(a)) => {
                    a.image_and_args
                }
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            parse(&["img", "httpd", "-f", "-p", "80"]),
            ["img", "httpd", "-f", "-p", "80"]
        );
        assert_eq!(parse(&["--", "img", "-x"]), ["img", "-x"]);
        assert_eq!(
            parse(&["-d", "img", "--replicas", "3"]),
            ["img", "--replicas", "3"]
        );
    }

    #[test]
    fn swarm_group_and_short_forms_parse_alike() {
        for args in [
            &["swarm", "init", "--autolock"][..],
            &["init", "--autolock"][..],
            &["system", "info"][..],
            &["info"][..],
        ] {
            assert_eq!(run(args).stdout, "parsed", "{args:?}");
        }
    }

    #[test]
    fn pflag_wrapping() {
        assert_eq!(
            wrap(42, 79, "Maximum number of tasks rolled back simultaneously (0 to roll back all at once) (default 1)"),
            "Maximum number of tasks rolled\n                                          back simultaneously (0 to roll\n                                          back all at once) (default 1)"
        );
    }
}
