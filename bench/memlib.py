"""Memory measurement for the Coracle benchmarks (Linux /proc). Standard library only.

`measured_run()` runs `coracle run ...` once and measures, besides the wall time:
  * coracle_peak_rss_kb: peak RSS of the coracle process itself (VmHWM read from
    /proc/PID/status, polled every `interval` seconds; the last value read before exit);
  * largest_process_maxrss_kb: "Maximum resident set size" from `/usr/bin/time -v` (GNU time)
    when it is used, else ru_maxrss from os.wait4() on the child. Both are the peak RSS of the
    LARGEST SINGLE process among coracle and its waited-for descendants, not a sum;
  * tree_peak_rss_kb: the largest SUM of RSS over coracle and all its descendants seen by the
    poller (sampled, so short peaks between two polls can be missed). A child caught between
    its fork/posix_spawn and its exec (still running coracle's executable) is left out: it
    shares coracle's memory, and its RSS would count that memory a second time.
With `rss_limit_kb`, the coracle process is killed as soon as its RSS exceeds the limit (so that
a run whose memory grows without bound ends before the machine runs out of memory); the
returned memory figures then say `killed_for_memory: true`. The run's stdout and stderr go to
files under `scratch` and are returned in the RunResult.
"""

import os
import re
import signal
import subprocess
import tempfile
import threading
import time

import benchlib

GNU_TIME = "/usr/bin/time"
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def gnu_time_usable():
    if not os.access(GNU_TIME, os.X_OK):
        return False
    with tempfile.NamedTemporaryFile(mode="r") as report:
        probe = subprocess.run(
            [GNU_TIME, "-v", "-o", report.name, "true"], capture_output=True, text=True
        )
        return probe.returncode == 0 and "Maximum resident set size" in report.read()


def process_table():
    """{pid: (ppid, rss_kb)} for every process readable in /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
        fields = stat[stat.rfind(")") + 2:].split()
        try:
            ppid = int(fields[1])
            rss_pages = int(fields[21])
        except (IndexError, ValueError):
            continue
        table[int(entry)] = (ppid, rss_pages * PAGE_KB)
    return table


def descendants(table, root):
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        for child in children.get(pid, []):
            found.append(child)
            stack.append(child)
    return found


def read_vm_hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def mem_total_kb():
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


class Sampler(threading.Thread):
    """Polls /proc while the run lasts: coracle's VmHWM and the RSS sum of its process tree.

    With rss_limit_kb, kills coracle once its RSS exceeds the limit. With trace, keeps one
    (seconds since start, coracle RSS kB, tree RSS kB) triple per poll.
    """

    def __init__(self, root_pid, wrapped, interval, rss_limit_kb=None, trace=False):
        super().__init__(daemon=True)
        self.root_pid = root_pid
        self.wrapped = wrapped  # True when root_pid is /usr/bin/time and coracle is its child
        self.interval = interval
        self.rss_limit_kb = rss_limit_kb
        self.keep_trace = trace
        self.trace = []
        self.started = time.perf_counter()
        self.stop_event = threading.Event()
        self.coracle_pid = None if wrapped else root_pid
        self.coracle_exe = None
        self.coracle_hwm_kb = None
        self.tree_peak_kb = 0
        self.max_processes = 0
        self.samples = 0
        self.killed_at_s = None
        self.killed_rss_kb = None

    def run(self):
        while not self.stop_event.is_set():
            table = process_table()
            tree = descendants(table, self.root_pid)
            if self.wrapped:
                if self.coracle_pid is None:
                    direct = [pid for pid in tree if table[pid][0] == self.root_pid]
                    self.coracle_pid = direct[0] if direct else None
                members = tree
            else:
                members = [self.root_pid] + tree
            if self.coracle_pid is not None:
                hwm = read_vm_hwm_kb(self.coracle_pid)
                if hwm is not None:
                    self.coracle_hwm_kb = max(hwm, self.coracle_hwm_kb or 0)
            total = sum(self._member_rss_kb(pid, table) for pid in members if pid in table)
            self.tree_peak_kb = max(self.tree_peak_kb, total)
            self.max_processes = max(self.max_processes, len(members))
            self.samples += 1
            coracle_rss = table.get(self.coracle_pid, (None, None))[1]
            elapsed = time.perf_counter() - self.started
            if self.keep_trace:
                self.trace.append((round(elapsed, 3), coracle_rss, total))
            if (
                self.rss_limit_kb
                and self.killed_at_s is None
                and coracle_rss is not None
                and coracle_rss > self.rss_limit_kb
            ):
                self.killed_at_s = elapsed
                self.killed_rss_kb = coracle_rss
                try:
                    os.kill(self.coracle_pid, signal.SIGKILL)
                except OSError:
                    pass
            self.stop_event.wait(self.interval)

    def _member_rss_kb(self, pid, table):
        """RSS of one tree member; 0 for a child of coracle that still runs coracle's image
        (between its fork or posix_spawn and its exec): it shares coracle's pages (vfork: the
        very same memory), so its RSS would count coracle's memory a second time. The RSS is
        read again after the check, so that a child that execs in between is not counted with
        the RSS it had before."""
        if pid == self.coracle_pid or self.coracle_pid is None:
            return table[pid][1]
        try:
            if self.coracle_exe is None:
                self.coracle_exe = os.readlink(f"/proc/{self.coracle_pid}/exe")
            if os.readlink(f"/proc/{pid}/exe") == self.coracle_exe:
                return 0
            with open(f"/proc/{pid}/stat") as handle:
                stat = handle.read()
            return int(stat[stat.rfind(")") + 2:].split()[21]) * PAGE_KB
        except (OSError, ValueError, IndexError):
            return 0

    def stop(self):
        self.stop_event.set()
        self.join()


def _prefer_for_oom_killer():
    """In the child before exec: make the kernel's OOM killer pick it first (best effort)."""
    try:
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write("1000")
    except OSError:
        pass


def measured_run(
    coracle,
    pipeline,
    home,
    extra_args,
    use_gnu_time,
    interval,
    scratch,
    label,
    timeout,
    rss_limit_kb=None,
    trace=False,
):
    command = benchlib.coracle_command(coracle, pipeline, extra_args=extra_args)
    time_report = os.path.join(scratch, f"{label}.time.txt")
    full_command = [GNU_TIME, "-v", "-o", time_report] + command if use_gnu_time else command
    stdout_path = os.path.join(scratch, f"{label}.stdout")
    stderr_path = os.path.join(scratch, f"{label}.stderr")
    with open(stdout_path, "w") as stdout, open(stderr_path, "w") as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(
            full_command,
            env=benchlib.coracle_env(home),
            stdout=stdout,
            stderr=stderr,
            preexec_fn=_prefer_for_oom_killer if rss_limit_kb else None,
        )
        sampler = Sampler(process.pid, use_gnu_time, interval, rss_limit_kb, trace)
        sampler.start()
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        try:
            _, status, rusage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop()
    with open(stdout_path) as handle:
        stdout_text = handle.read()
    with open(stderr_path) as handle:
        stderr_text = handle.read()

    returncode = process.returncode
    largest_kb = None
    source = "os.wait4 ru_maxrss"
    if use_gnu_time:
        source = "/usr/bin/time -v"
        try:
            with open(time_report) as handle:
                report = handle.read()
        except OSError:
            report = ""
        match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report)
        largest_kb = int(match.group(1)) if match else None
        exit_match = re.search(r"Exit status: (\d+)", report)
        if exit_match:
            returncode = int(exit_match.group(1))
        elif "Command terminated by signal" in report:
            returncode = returncode or -1
    else:
        largest_kb = rusage.ru_maxrss  # kilobytes on Linux
    if sampler.killed_at_s is not None and returncode == 0:
        returncode = -signal.SIGKILL
    result = benchlib.RunResult(command, wall, returncode, stdout_text, stderr_text)
    memory = {
        "coracle_peak_rss_kb": sampler.coracle_hwm_kb,
        "largest_process_maxrss_kb": largest_kb,
        "largest_process_maxrss_source": source,
        "tree_peak_rss_kb": sampler.tree_peak_kb,
        "max_processes_in_tree": sampler.max_processes,
        "polls": sampler.samples,
    }
    if rss_limit_kb:
        memory["rss_limit_kb"] = rss_limit_kb
        memory["killed_for_memory"] = sampler.killed_at_s is not None
        if sampler.killed_at_s is not None:
            memory["killed_at_s"] = round(sampler.killed_at_s, 3)
            memory["killed_rss_kb"] = sampler.killed_rss_kb
    if trace:
        memory["trace"] = sampler.trace
    return result, memory


def mib(kilobytes):
    return "n/a" if kilobytes is None else f"{kilobytes / 1024:.1f} MiB"
