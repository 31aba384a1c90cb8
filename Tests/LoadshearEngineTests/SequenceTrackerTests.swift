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
        numbers.append(7)
        let t = Self.feed(numbers)
        // Too far back to tell a late one from a repeat: late, and its gap stays counted.
        #expect(t.reordered == 2)
        #expect(t.lost == 1)
        #expect(t.duplicates == 0)
    }

    /// Eight-byte numbers across 2^63 and 2^64, and garbage (a wrong offset, a hostile
    /// server): counted without a trap; a huge jump starts the count over.
    @Test func anyEightByteValueIsSafe() {
        let t = Self.feed(
            [0x7FFF_FFFF_FFFF_FFFE, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0001, .max, 0, 2, 1], bytes: 8)
        // 2^63 never came; max is a jump (a new start); then 0 follows max, 1 comes after 2.
        #expect(t.lost == 1)
        #expect(t.reordered == 1)
        var g = SystemRandomNumberGenerator()
        var r = SequenceTracker(bytes: 8)
        for i in 0..<10_000 {
            _ = r.receive(g.next(), at: UInt64(i) * 1_000_000_000_000)
            #expect(r.lost >= 0 && r.jitter.isFinite)
        }
        var j = Self.feed([0, 1, 2, 1 << 40, (1 << 40) + 1, (1 << 40) + 3], bytes: 8)
        #expect(j.lost == 1, "the jump is a new start, not 2^40 lost")
        _ = j.receive(0, at: 1)
    }
}
