import Testing

@testable import LoadshearEngine

/// (ext) SEQUENCE: the tracker's counts for known arrival orders.
@Suite struct SequenceTrackerTests {
    /// Feeds `numbers` one per millisecond; returns the tracker.
    static func feed(_ numbers: [UInt64], bytes: Int = 4) -> SequenceTracker {
        var t = SequenceTracker(bytes: bytes)
        for (i, n) in numbers.enumerated() { _ = t.receive(n, at: UInt64(i + 1) * 1_000_000) }
        return t
    }

    @Test func gapsSwapsAndDuplicatesAreCountedExactly() {
        // 0…99 with 10 and 11 missing, 20/21 swapped, 30 twice, 50 arriving after 60.
        var numbers = Array(UInt64(0)..<100).filter { $0 != 10 && $0 != 11 && $0 != 50 }
        numbers.swapAt(numbers.firstIndex(of: 20)!, numbers.firstIndex(of: 21)!)
        numbers.insert(30, at: numbers.firstIndex(of: 30)! + 1)
        numbers.insert(50, at: numbers.firstIndex(of: 60)! + 1)
        let t = Self.feed(numbers)
        #expect(t.lost == 2)
        #expect(t.reordered == 2)
        #expect(t.duplicates == 1)
    }

    @Test func aLateNumberFillsItsGapAndAnEarlierStartCountsWhatLiesBetween() {
        // Starts at 5; then 3 arrives: 4 is a gap, 3 is late.
        let t = Self.feed([5, 6, 3, 7])
        #expect(t.lost == 1)
        #expect(t.reordered == 1)
        #expect(t.duplicates == 0)
    }

    @Test func numbersWrapAroundTheirWidth() {
        // A 1-byte number: 250…255, 0…9, with 2 missing and 254 repeated after the wrap.
        let numbers: [UInt64] = [250, 251, 252, 253, 254, 255, 0, 1, 3, 254, 4, 5, 6, 7, 8, 9]
        let t = Self.feed(numbers, bytes: 1)
        #expect(t.lost == 1)
        #expect(t.duplicates == 1)
        #expect(t.reordered == 0)
    }

    @Test func evenlySpacedArrivalsHaveNoJitterAndUnevenOnesDo() {
        var even = SequenceTracker(bytes: 4)
        for n in 0..<200 { _ = even.receive(UInt64(n), at: 1_000_000 + UInt64(n) * 1_000_000) }
        #expect(even.jitter < 1)
        var uneven = SequenceTracker(bytes: 4)
        for n in 0..<200 {
            // Every other one 400 µs late.
            _ = uneven.receive(UInt64(n), at: 1_000_000 + UInt64(n) * 1_000_000 + (n % 2 == 1 ? 400_000 : 0))
        }
        #expect(uneven.jitter > 100_000)
        #expect(uneven.jitter < 800_000)
    }

    @Test func aNumberBeyondTheWindowIsLateNeverADuplicate() {
        var numbers = Array(UInt64(0)..<10_000)
        numbers.remove(at: 5)
        numbers.append(5)
        let t = Self.feed(numbers)
        #expect(t.reordered == 1)
        #expect(t.lost == 0)
        #expect(t.duplicates == 0)
    }
}
