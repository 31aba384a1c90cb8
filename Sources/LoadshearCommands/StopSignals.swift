import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// SIGINT, SIGTERM and SIGHUP: the first stops the run gracefully (summary and report
/// included) — Ctrl-C, `timeout`, container runtimes and Kubernetes all end a process with
/// one of these; a second one exits at once with 128 + the signal number.
///
/// The signals are caught by a handler of our own that writes the signal's number into a
/// pipe; a thread reads the pipe and calls the listeners. Not a `DispatchSource`: on Linux
/// it reads a `signalfd`, which only sees a signal that no thread takes first, and the main
/// thread (parked by the async main with every signal unblocked) sometimes took it — CI saw
/// a second Ctrl-C lost that way.
final class StopSignals: Sendable {
    static let handled: [Int32] = [SIGINT, SIGTERM, SIGHUP]
    /// This listener's number in ``Relay``.
    private let id: Int

    /// Starts handling the signals, and `onSignal` gets each one with the count so far (of
    /// every kind together), on the relay's thread, one at a time.
    init(_ onSignal: @escaping @Sendable (Int32, Int) -> Void) {
        let count = Mutex(0)
        id = Relay.add { sig in
            let n = count.withLock { c -> Int in
                c += 1
                return c
            }
            onSignal(sig, n)
        }
    }

    /// How a signal is named in messages: `Ctrl-C` for SIGINT, the signal's name otherwise.
    static func name(_ sig: Int32) -> String {
        switch sig {
        case SIGINT: "Ctrl-C"
        case SIGTERM: "SIGTERM"
        case SIGHUP: "SIGHUP"
        default: "signal \(sig)"
        }
    }

    /// Stops handling; the signals' default actions are back once no listener is left.
    func cancel() {
        Relay.remove(id)
    }

    /// The process-wide part: the pipe, the handler and the thread that reads the pipe.
    private enum Relay {
        private struct Listeners {
            var next = 0
            var all: [Int: @Sendable (Int32) -> Void] = [:]
        }
        private static let listeners = Mutex(Listeners())
        /// The pipe's read end, made on first use, with the handler installed and the thread
        /// started; -1 if no pipe could be made.
        private static let readEnd: Int32 = start()

        static func add(_ f: @escaping @Sendable (Int32) -> Void) -> Int {
            listeners.withLock { l -> Int in
                l.next += 1
                l.all[l.next] = f
                // Installed under the lock, on the first listener only, so that a remove and
                // an add at once cannot leave a listener with the default action.
                if l.all.count == 1, readEnd >= 0 { setHandlers(installed: true) }
                return l.next
            }
        }

        static func remove(_ id: Int) {
            listeners.withLock { l in
                guard l.all.removeValue(forKey: id) != nil, l.all.isEmpty else { return }
                setHandlers(installed: false)
            }
        }

        private static func setHandlers(installed: Bool) {
            var action = sigaction()
            let handler: (@convention(c) (Int32) -> Void)? = installed ? relaySignal : SIG_DFL
            #if canImport(Glibc)
            action.__sigaction_handler.sa_handler = handler
            #else
            action.__sigaction_u.__sa_handler = handler
            #endif
            action.sa_flags = installed ? SA_RESTART : 0
            sigemptyset(&action.sa_mask)
            for sig in StopSignals.handled { sigaction(sig, &action, nil) }
        }

        private static func start() -> Int32 {
            var fds: [Int32] = [-1, -1]
            guard pipe(&fds) == 0 else { return -1 }
            for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            // The handler must never block: a full pipe drops the byte (the signal is then one
            // of many already waiting).
            _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK)
            relayWriteEnd.store(fds[1], ordering: .releasing)
            let readEnd = fds[0]
            let thread = Thread {
                var byte: UInt8 = 0
                while true {
                    let n = read(readEnd, &byte, 1)
                    if n == 1 {
                        let all = listeners.withLock { $0.all.sorted { $0.key < $1.key }.map(\.value) }
                        for f in all { f(Int32(byte)) }
                    } else if n < 0, errno == EINTR {
                        continue
                    } else {
                        return
                    }
                }
            }
            thread.name = "loadshear.signals"
            thread.start()
            return readEnd
        }
    }
}

/// The relay pipe's write end, for the signal handler (a C function cannot capture it).
private let relayWriteEnd = Atomic<Int32>(-1)

/// The signal handler: async-signal-safe, it only writes the signal's number to the pipe.
private func relaySignal(_ sig: Int32) {
    let saved = errno
    var byte = UInt8(truncatingIfNeeded: sig)
    _ = write(relayWriteEnd.load(ordering: .acquiring), &byte, 1)
    errno = saved
}

extension StopSignals {
    /// Returns at the first SIGINT, SIGTERM or SIGHUP, or after `timeout` seconds.
    static func wait(timeout: Double?) async {
        let gate = Gate()
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            gate.set(c)
            let signals = StopSignals { _, _ in gate.open() }
            gate.keep(signals)
            if let timeout {
                DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { gate.open() }
            }
        }
    }

    /// Resumes its continuation once, whoever opens it first, and then stops listening.
    private final class Gate: @unchecked Sendable {
        // @unchecked: guarded by `lock`.
        private let lock = NSLock()
        private var continuation: CheckedContinuation<Void, Never>?
        private var signals: StopSignals?
        private var opened = false

        /// The continuation ``open()`` resumes.
        func set(_ c: CheckedContinuation<Void, Never>) {
            lock.withLock { continuation = c }
        }

        /// Keeps the signal handling alive until the gate opens; cancels it at once if the gate
        /// already has.
        func keep(_ s: StopSignals) {
            let late = lock.withLock { () -> Bool in
                signals = s
                return opened
            }
            if late { s.cancel() }
        }

        /// Resumes the continuation, if it is still there, and stops the signal handling; safe to
        /// call more than once.
        func open() {
            let (c, s) = lock.withLock { () -> (CheckedContinuation<Void, Never>?, StopSignals?) in
                opened = true
                defer {
                    continuation = nil
                    signals = nil
                }
                return (continuation, signals)
            }
            s?.cancel()
            c?.resume()
        }
    }
}
