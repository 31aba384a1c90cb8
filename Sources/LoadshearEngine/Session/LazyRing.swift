import NIOCore

/// A FIFO queue whose storage is made on the first append, for the per-session queues: a
/// `CircularBuffer` allocates its storage when it is made, and a run holds up to hundreds of
/// thousands of sessions, most of which never queue anything (bench/connect.sh measures the
/// memory per idle session). Once made, the storage is kept and reused.
struct LazyRing<Element>: Sequence {
    private var ring: CircularBuffer<Element>?
    /// Narrow, so it fits in the optional's padding: a ring takes 32 bytes, not 40.
    private let initialCapacity: UInt16

    init(initialCapacity: UInt16) {
        self.initialCapacity = initialCapacity
    }

    var isEmpty: Bool { ring?.isEmpty ?? true }
    var count: Int { ring?.count ?? 0 }

    /// The last element; setting it replaces it (the queue must not be empty).
    var last: Element? {
        get { ring?.last }
        set {
            guard let newValue, let ring, !ring.isEmpty else { preconditionFailure("no last element") }
            self.ring![ring.index(before: ring.endIndex)] = newValue
        }
    }

    mutating func append(_ element: Element) {
        if ring == nil { ring = CircularBuffer(initialCapacity: Int(initialCapacity)) }
        ring!.append(element)
    }

    mutating func popFirst() -> Element? { ring?.popFirst() }

    mutating func removeFirst(_ n: Int) {
        if n > 0 { ring!.removeFirst(n) }
    }

    mutating func removeLast() { ring!.removeLast() }

    /// Empties the queue and keeps its storage.
    mutating func removeAll() { ring?.removeAll(keepingCapacity: true) }

    func makeIterator() -> IndexingIterator<CircularBuffer<Element>> {
        (ring ?? CircularBuffer(initialCapacity: 0)).makeIterator()
    }
}
