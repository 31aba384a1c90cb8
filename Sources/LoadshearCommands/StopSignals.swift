import Dispatch
import Foundation

/// SIGINT, SIGTERM and SIGHUP: the first stops the run gracefully (summary and report
/// included) — Ctrl-C, `timeout`, container runtimes and Kubernetes all end a process with
/// one of these; a second one exits at once with 128 + the signal number.
final class StopSignals: @unchecked Sendable {
    // @unchecked: `count` is only touched on the serial `queue`.
    static let handled: [Int32] = [SIGINT, SIGTERM, SIGHUP]
    private var sources: [DispatchSourceSignal] = []
    private let queue = DispatchQueue(label: "loadshear.signals")
    /// Signals received so far, of every kind together.
    private var count = 0

    /// Starts handling the signals: their default action is turned off, and `onSignal` gets
    /// each one with the count so far, on a serial queue.
    init(_ onSignal: @escaping @Sendable (Int32, Int) -> Void) {
        for sig in Self.handled {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler { [weak self] in
                guard let self else { return }
                count += 1
                onSignal(sig, count)
            }
            source.resume()
            sources.append(source)
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

    /// Stops handling and restores the signals' default actions.
    func cancel() {
        for s in sources { s.cancel() }
        for sig in Self.handled { signal(sig, SIG_DFL) }
    }
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
