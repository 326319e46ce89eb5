"""The man pages match the programs: every command of speechfsd (from its
--help) has a section in speechfsd(8) that documents exactly the options
its --help lists, the daemon's options match the page's OPTIONS, and
speechfs --help matches speechfs(1)'s OPTIONS, both ways."""
import os
import pathlib
import re
import shlex
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
BUILD = pathlib.Path(os.environ.get("SFS_BUILD", ROOT / "build"))
SFSD = BUILD / "speechfsd"
SFS = BUILD / "speechfs"
MAN8 = ROOT / "packaging/man/speechfsd.8"
MAN1 = ROOT / "packaging/man/speechfs.1"


def run(*args):
    p = subprocess.run([str(a) for a in args], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, (args, p.stderr)
    assert p.stderr == "", (args, p.stderr)
    return p.stdout


def block(text, title):
    """The lines of a help text's block that starts with `title:`, up to
    the next blank line."""
    lines = text.splitlines()
    start = lines.index(title + ":") + 1
    out = []
    for ln in lines[start:]:
        if not ln.strip():
            break
        out.append(ln)
    return out


def option_names(line):
    """The options a help line or a man tag names: --long, -s, and the
    mount's -o names (name= when it takes a value)."""
    line = re.sub(r"\\f[BIRP]", "", line.replace("\\-", "-"))
    names = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", line))
    names |= set(re.findall(r"(?<![\w-])-[a-zA-Z](?![\w-])", line))
    for m in re.finditer(r"-o\s+(\S+)", line):
        for item in m.group(1).split(","):
            name = re.match(r"[a-z_]+=?", item)
            if name:
                names.add(name.group(0))
    names.discard("-o")
    return names


def help_options(text):
    names = set()
    for ln in block(text, "options"):
        if ln.lstrip().startswith("-"):
            names |= option_names(ln)
    return names


def man_sections(page):
    """{(level, title): [lines]} of a man page's source, .SH and .SS."""
    secs = {}
    cur = None
    for ln in page.read_text().splitlines():
        m = re.match(r'\.(SH|SS)\s+"?([^"]+?)"?\s*$', ln)
        if m:
            cur = (m.group(1), m.group(2))
            secs[cur] = []
        elif cur:
            secs[cur].append(ln)
    return secs


def man_text(line):
    """A man source line as printed: the arguments of .B and .I joined
    by spaces, those of the alternating macros (.BI, .BR ...) without."""
    m = re.match(r"\.([BIR]{1,2})\s+(.*)", line)
    if not m:
        return line
    args = shlex.split(m.group(2).replace("\\", "\\\\"))
    return (" " if len(m.group(1)) == 1 else "").join(args)


def man_tags(lines):
    """The options named by the tags (.TP lines) of a section."""
    names = set()
    for i, ln in enumerate(lines[:-1]):
        if ln.startswith(".TP"):
            names |= option_names(man_text(lines[i + 1]))
    return names


def commands():
    lines = block(run(SFSD, "--help"), "commands (each with --help)")
    cmds = [re.split(r"\s{2,}", ln.strip())[0] for ln in lines]
    assert len(cmds) >= 9, cmds
    return cmds


COMMON = {"--store", "--config", "-c", "--json", "-v", "--verbose", "-h",
          "--help"}


def test_common_options_are_documented():
    secs = man_sections(MAN8)
    assert man_tags(secs[("SS", "Common options")]) == COMMON


@pytest.mark.parametrize("cmd", commands())
def test_command_help_matches_man_page(cmd):
    text = run(SFSD, *cmd.split(), "--help")
    assert text.startswith(f"usage: speechfsd {cmd} ")
    assert block(text, "example")[0].strip().startswith(f"speechfsd {cmd} ")
    opts = help_options(text)
    assert COMMON <= opts, COMMON - opts
    secs = man_sections(MAN8)
    assert ("SS", cmd) in secs, f"speechfsd(8) has no section '{cmd}'"
    documented = man_tags(secs[("SS", cmd)])
    assert documented == opts - COMMON, \
        f"--help only: {sorted(opts - COMMON - documented)}, " \
        f"man only: {sorted(documented - (opts - COMMON))}"


def test_every_man_section_is_a_command():
    cmds = set(commands())
    secs = man_sections(MAN8)
    titled = [t for (lvl, t) in secs if lvl == "SS"]
    assert set(titled) - {"Common options"} == cmds


def test_daemon_help_matches_man_page():
    opts = help_options(run(SFSD, "--help"))
    assert {"--config", "--store", "--listen", "--no-workers",
            "--log-level", "--version", "--help"} <= opts
    documented = man_tags(man_sections(MAN8)[("SH", "OPTIONS")])
    assert documented == opts


def test_mount_help_matches_man_page():
    text = run(SFS, "--help")
    opts = set()
    for ln in text.splitlines():
        if re.match(r"\s+-", ln):
            opts |= option_names(ln)
    assert {"--store", "store=", "--user", "user=", "--config", "config=",
            "-f", "-d", "-s", "ro", "allow_other", "uid=", "gid=",
            "umask=", "no_workers", "listening=", "generate=",
            "--version", "-V", "-h", "--help"} <= opts, opts
    documented = man_tags(man_sections(MAN1)[("SH", "OPTIONS")])
    assert documented == opts, \
        f"--help only: {sorted(opts - documented)}, " \
        f"man only: {sorted(documented - opts)}"
