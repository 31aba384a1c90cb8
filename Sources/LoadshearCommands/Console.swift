import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where output, diagnostics and logs go: stdout and stderr, written with `write(2)` so
/// that a closed pipe (`loadshear … | head -1`) is an error we see, not a crash. Once a
/// stream's reader has gone, later output to it is dropped quietly; the run goes on.
package enum Console {
    /// Whether stderr is a terminal: diagnostics are colored then.
    package static var stderrIsTTY: Bool { isatty(2) == 1 }
    /// Whether stdout is a terminal: one condition for the dashboard.
    package static var stdoutIsTTY: Bool { isatty(1) == 1 }
    /// Whether stdin is a terminal: the dashboard reads keys from it, and the responsible-use
    /// prompt needs it.
    package static var stdinIsTTY: Bool { isatty(0) == 1 }
    /// False when `NO_COLOR` is set, whatever its value.
    package static var colorAllowed: Bool { ProcessInfo.processInfo.environment["NO_COLOR"] == nil && !dumbTerminal }

    /// `TERM=dumb` (an editor's shell, some CI consoles): no cursor movement, so plain lines
    /// instead of the dashboard, as with --no-tui.
    package static var dumbTerminal: Bool { ProcessInfo.processInfo.environment["TERM"] == "dumb" }

    /// While the dashboard owns the screen, stderr text is held back and printed once it
    /// is gone, so logs never land in the dashboard's area.
    private static let held = Mutex<[String]?>(nil)
    /// Streams whose reader has gone (or that failed otherwise).
    private static let closed = Mutex<Set<Int32>>([])
    /// Logs from the event loops are written here, in order, never on the loop itself.
    private static let logQueue = DispatchQueue(label: "loadshear.log")

    /// Call once at start. Ignores SIGPIPE, so that writing to a closed pipe fails with EPIPE
    /// instead of killing the process; and puts /dev/null on stdin, stdout or stderr if the
    /// process was started with one closed (`2>&-`), so that no file opened later (a report)
    /// takes its number and receives what was meant for the terminal.
    package static func prepareStandardStreams() {
        signal(SIGPIPE, SIG_IGN)
        for fd: Int32 in 0...2 where fcntl(fd, F_GETFD) == -1 {
            let null = Glibc.open("/dev/null", O_RDWR)
            if null >= 0, null != fd {
                dup2(null, fd)
                Glibc.close(null)
            }
        }
    }

    /// Writes all of `bytes` to `fd`. False when it fails. A standard stream that fails
    /// (`remember`) is marked closed for good and later writes to it are dropped; files keep
    /// their own state (`ReportFile`), since their numbers are reused once closed.
    @discardableResult
    package static func write(_ bytes: some Collection<UInt8>, to fd: Int32, remember: Bool = true) -> Bool {
        if remember, closed.withLock({ $0.contains(fd) }) { return false }
        let ok = Array(bytes).withUnsafeBytes { raw -> Bool in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n > 0 {
                    offset += n
                } else if n < 0, errno == EINTR {
                    continue
                } else if n < 0, errno == EAGAIN {
                    // A non-blocking stream that is full: wait until it takes more.
                    var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&p, 1, 1000)
                } else {
                    return false
                }
            }
            return true
        }
        if !ok, remember { closed.withLock { _ = $0.insert(fd) } }
        return ok
    }

    /// Writes `s` to stderr now, or holds it back while the dashboard is up.
    package static func error(_ s: String) {
        let printNow = held.withLock { h -> Bool in
            guard h != nil else { return true }
            h!.append(s)
            return false
        }
        if printNow { write(Array(s.utf8), to: 2) }
    }

    /// A log line from anywhere (event loops included): queued, written off the caller's thread.
    package static func log(_ s: String) {
        logQueue.async { error(s) }
    }

    /// Writes the logs queued so far.
    package static func flushLogs() {
        logQueue.sync {}
    }

    /// Starts holding stderr text back (the dashboard is about to draw).
    package static func holdErrors() {
        held.withLock { if $0 == nil { $0 = [] } }
    }

    /// Prints what was held back and stops holding.
    package static func releaseErrors() {
        let lines = held.withLock { h -> [String] in
            let v = h ?? []
            h = nil
            return v
        }
        for l in lines { write(Array(l.utf8), to: 2) }
    }

    /// Writes `s` to stdout.
    package static func out(_ s: String) {
        write(Array(s.utf8), to: 1)
    }
}
