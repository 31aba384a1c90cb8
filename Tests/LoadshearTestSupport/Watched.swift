import Foundation

/// State that tests wait on without blocking a thread: `wait(until:)` suspends the calling
/// task until a change makes the predicate true, or its deadline passes. Async tests must
/// never block the cooperative pool (the engine they wait for runs on it), so there is no
/// blocking variant here.
public final class Watched<State: Sendable>: @unchecked Sendable {
    // @unchecked: `state`, `waiters` and `nextID` are guarded by `lock`.
    private let lock = NSLock()
    private var state: State
    private var waiters: [Int: Waiter] = [:]
    private var nextID = 0

    private struct Waiter {
        var predicate: @Sendable (State) -> Bool
        var continuation: CheckedContinuation<Bool, Never>
    }

    public init(_ initial: State) {
        state = initial
    }

    /// Changes the state; waiters whose predicate now holds wake up.
    @discardableResult
    public func change<T>(_ body: (inout State) -> T) -> T {
        lock.lock()
        let result = body(&state)
        var ready: [CheckedContinuation<Bool, Never>] = []
        for (id, w) in waiters where w.predicate(state) {
            ready.append(w.continuation)
            waiters[id] = nil
        }
        lock.unlock()
        for c in ready { c.resume(returning: true) }
        return result
    }

    public func read<T>(_ body: (State) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(state)
    }

    public var value: State { read { $0 } }

    /// Suspends until `predicate` holds (true) or `timeout` passes (false).
    public func wait(
        timeout: Duration = .seconds(90), until predicate: @escaping @Sendable (State) -> Bool
    ) async -> Bool {
        await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
            lock.lock()
            if predicate(state) {
                lock.unlock()
                c.resume(returning: true)
                return
            }
            let id = nextID
            nextID += 1
            waiters[id] = Waiter(predicate: predicate, continuation: c)
            lock.unlock()
            let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { [self] in expire(id) }
        }
    }

    private func expire(_ id: Int) {
        lock.lock()
        let w = waiters.removeValue(forKey: id)
        lock.unlock()
        w?.continuation.resume(returning: false)
    }
}

/// SplitMix64: a small seeded generator, so a failing random test can be replayed.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A temporary directory for a test's scripts and packet files, removed when it goes away.
public final class Workspace: @unchecked Sendable {
    // @unchecked: immutable after init; files are written by one test at a time.
    public let dir: String

    public init() {
        dir = NSTemporaryDirectory() + "loadshear-test-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: dir)
    }

    public func path(_ name: String) -> String { dir + "/" + name }

    @discardableResult
    public func write(_ name: String, _ bytes: [UInt8]) -> String {
        _ = FileManager.default.createFile(atPath: path(name), contents: Data(bytes))
        return path(name)
    }

    /// Writes a script and its files (packets, modules) and returns the script's path.
    @discardableResult
    public func script(_ text: String, name: String = "test.ldsh", files: [String: [UInt8]] = [:]) -> String {
        for (n, bytes) in files { write(n, bytes) }
        try! text.write(toFile: path(name), atomically: true, encoding: .utf8)
        return path(name)
    }
}
