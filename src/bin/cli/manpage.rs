//! The man pages, `--generate man`: clap_mangen's title, description and
//! options, with what it leaves out or gets wrong done here. The SYNOPSIS
//! keeps every option's value name (`[-c|--connections N]`, not
//! `[-c|--connections]`); a subcommand is described in place (`echo-bench
//! merge FILE...`) instead of pointing at an `echo-bench-merge(1)` page
//! that nothing generates; the help's examples keep their lines; and each
//! binary adds EXIT STATUS, ENVIRONMENT and SIGNALS sections.

use std::io::{self, Write};

use clap::ArgAction;

/// The sections a binary adds to its man page, as plain text (paragraphs
/// separated by a blank line; a line starting with two spaces is kept as
/// it is, for lists).
#[derive(Debug, Clone, Copy)]
pub struct ManSections {
    /// What each exit status means.
    pub exit_status: &'static str,
    /// The environment variables read.
    pub environment: &'static str,
    /// What each signal does.
    pub signals: &'static str,
}

/// Writes the man page of `cmd` with `sections` to `out`.
pub fn render(
    mut cmd: clap::Command,
    sections: &ManSections,
    out: &mut dyn Write,
) -> io::Result<()> {
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    writeln!(out, ".SH SYNOPSIS")?;
    writeln!(out, "{}", synopsis(&cmd, cmd.get_name()))?;
    for sub in subcommands(&cmd) {
        writeln!(out, ".br")?;
        let name = format!("{} {}", cmd.get_name(), sub.get_name());
        writeln!(out, "{}", synopsis(sub, &name))?;
    }
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    let subs = subcommands(&cmd);
    if !subs.is_empty() {
        writeln!(out, ".SH SUBCOMMANDS")?;
        for sub in subs {
            writeln!(out, ".TP")?;
            writeln!(
                out,
                "\\fB{} {}\\fR",
                escape(cmd.get_name()),
                escape(sub.get_name())
            )?;
            if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
                paragraphs(out, &about.to_string())?;
            }
        }
    }
    if let Some(after) = cmd.get_after_help() {
        let text = after.to_string();
        let body = text.strip_prefix("Examples:").unwrap_or(&text);
        writeln!(out, ".SH EXAMPLES")?;
        writeln!(out, ".nf")?;
        for line in body.trim_matches('\n').lines() {
            writeln!(out, "{}", escape_line(line))?;
        }
        writeln!(out, ".fi")?;
    }
    for (title, text) in [
        ("EXIT STATUS", sections.exit_status),
        ("ENVIRONMENT", sections.environment),
        ("SIGNALS", sections.signals),
    ] {
        writeln!(out, ".SH {title}")?;
        paragraphs(out, text)?;
    }
    if cmd.get_version().is_some() || cmd.get_long_version().is_some() {
        man.render_version_section(out)?;
    }
    Ok(())
}

/// The visible subcommands of `cmd` (clap's own `help` aside).
fn subcommands(cmd: &clap::Command) -> Vec<&clap::Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .collect()
}

/// One SYNOPSIS line: `name [-s|--long VALUE]... POSITIONAL...`.
fn synopsis(cmd: &clap::Command, name: &str) -> String {
    let mut line = format!("\\fB{}\\fR", escape(name));
    let args = cmd.get_arguments().filter(|a| !a.is_hide_set());
    let (positionals, options): (Vec<_>, Vec<_>) = args.partition(|a| a.is_positional());
    for arg in options.into_iter().chain(positionals) {
        line.push(' ');
        line.push_str(&synopsis_arg(arg));
    }
    if !subcommands(cmd).is_empty() {
        line.push_str(" [\\fIsubcommand\\fR]");
    }
    line
}

/// One argument of a SYNOPSIS line, with its value name.
fn synopsis_arg(arg: &clap::Arg) -> String {
    let value = || {
        let names: Vec<String> = match arg.get_value_names() {
            Some(names) => names.iter().map(|n| n.to_string()).collect(),
            None => vec![arg.get_id().as_str().to_uppercase()],
        };
        format!("\\fI{}\\fR", escape(&names.join(" ")))
    };
    let repeated = matches!(arg.get_action(), ArgAction::Append | ArgAction::Count);
    let mut text = if arg.is_positional() {
        value()
    } else {
        let mut names = Vec::new();
        if let Some(short) = arg.get_short() {
            names.push(format!("\\fB\\-{}\\fR", escape(&short.to_string())));
        }
        if let Some(long) = arg.get_long() {
            names.push(format!("\\fB\\-\\-{}\\fR", escape(long)));
        }
        let mut text = names.join("|");
        if arg.get_action().takes_values() {
            text.push(' ');
            text.push_str(&value());
        }
        text
    };
    if repeated {
        text.push_str("...");
    }
    if arg.is_required_set() {
        text
    } else {
        format!("[{text}]")
    }
}

/// Text as roff paragraphs: blank lines separate them, and lines starting
/// with two spaces are kept as they are.
fn paragraphs(out: &mut dyn Write, text: &str) -> io::Result<()> {
    let mut first = true;
    for para in text.trim().split("\n\n") {
        if !first {
            writeln!(out, ".PP")?;
        }
        first = false;
        let literal = para.lines().any(|l| l.starts_with("  "));
        if literal {
            writeln!(out, ".nf")?;
        }
        for line in para.lines() {
            writeln!(out, "{}", escape_line(line))?;
        }
        if literal {
            writeln!(out, ".fi")?;
        }
    }
    Ok(())
}

/// Escapes text for roff: backslashes and dashes.
fn escape(text: &str) -> String {
    text.replace('\\', "\\e").replace('-', "\\-")
}

/// Escapes a whole line: also a leading `.` or `'`, which roff would read
/// as a request.
fn escape_line(line: &str) -> String {
    let escaped = escape(line);
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    #[command(name = "demo", after_help = "Examples:\n  demo -n 3 .hidden")]
    struct Demo {
        /// A count
        #[arg(short = 'n', long, value_name = "N")]
        count: Option<u32>,
        /// A switch
        #[arg(long)]
        loud: bool,
        /// Files
        #[arg(value_name = "FILE")]
        files: Vec<String>,
    }

    #[test]
    fn synopsis_keeps_value_names_and_sections_are_there() {
        use clap::CommandFactory;
        let sections = ManSections {
            exit_status: "0 fine.\n\n1 not.",
            environment: "NONE.",
            signals: "  SIGINT   stops it",
        };
        let mut out = Vec::new();
        render(Demo::command(), &sections, &mut out).unwrap();
        let page = String::from_utf8(out).unwrap();
        assert!(
            page.contains("[\\fB\\-n\\fR|\\fB\\-\\-count\\fR \\fIN\\fR]"),
            "{page}"
        );
        assert!(page.contains("[\\fB\\-\\-loud\\fR]"), "{page}");
        assert!(page.contains("[\\fIFILE\\fR...]"), "{page}");
        for title in ["EXIT STATUS", "ENVIRONMENT", "SIGNALS", "EXAMPLES"] {
            assert!(page.contains(&format!(".SH {title}")), "{page}");
        }
        // A line starting with a dot is text, not a request.
        assert!(page.contains("demo \\-n 3 .hidden"), "{page}");
    }
}
