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
    private var count = 0

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

    static func name(_ sig: Int32) -> String {
        switch sig {
        case SIGINT: "Ctrl-C"
        case SIGTERM: "SIGTERM"
        case SIGHUP: "SIGHUP"
        default: "signal \(sig)"
        }
    }

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

        func set(_ c: CheckedContinuation<Void, Never>) {
            lock.withLock { continuation = c }
        }

        func keep(_ s: StopSignals) {
            let late = lock.withLock { () -> Bool in
                signals = s
                return opened
            }
            if late { s.cancel() }
        }

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
