import Foundation
import Synchronization

/// Raw mode and the alternate screen, restored on every exit path (normal end, `q`,
/// Ctrl-C, the second Ctrl-C's immediate exit).
enum Terminal {
    /// The terminal's settings from before the dashboard; nil when the dashboard is not up.
    private static let saved = Mutex<termios?>(nil)

    /// Columns of the terminal (`COLUMNS`, then 100, when it does not say).
    static func width() -> Int {
        var ws = winsize()
        if ioctl(1, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_col > 0 { return Int(ws.ws_col) }
        return Int(ProcessInfo.processInfo.environment["COLUMNS"] ?? "") ?? 100
    }

    /// Rows of the terminal (`LINES`, then 24, when it does not say).
    static func height() -> Int {
        var ws = winsize()
        if ioctl(1, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_row > 0 { return Int(ws.ws_row) }
        return Int(ProcessInfo.processInfo.environment["LINES"] ?? "") ?? 24
    }

    /// Puts stdin in non-canonical mode without echo (Ctrl-C still interrupts; reads time out
    /// every 200 ms), switches to the alternate screen with the cursor hidden, holds stderr
    /// back, and has ``leaveDashboard()`` run at exit. Nothing happens when stdin is not a
    /// terminal.
    static func enterDashboard() {
        var t = termios()
        guard tcgetattr(0, &t) == 0 else { return }
        saved.withLock { $0 = t }
        var raw = t
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO)  // keep ISIG: Ctrl-C still interrupts
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 0
            cc[Int(VTIME)] = 2  // reads wake every 200 ms
        }
        tcsetattr(0, TCSANOW, &raw)
        Console.out("\u{1B}[?1049h\u{1B}[?25l\u{1B}[H\u{1B}[2J")
        Console.holdErrors()
        atexit { Terminal.leaveDashboard() }
    }

    /// Restores the saved settings, the main screen and the cursor, then prints the stderr
    /// text held back; only the first call after ``enterDashboard()`` does anything.
    static func leaveDashboard() {
        guard
            var t = saved.withLock({ s -> termios? in
                let v = s
                s = nil
                return v
            })
        else { return }
        tcsetattr(0, TCSANOW, &t)
        Console.out("\u{1B}[?25h\u{1B}[?1049l")
        Console.releaseErrors()
    }
}
