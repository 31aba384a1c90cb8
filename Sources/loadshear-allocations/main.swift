// Counts the heap allocations of Loadshear's per-packet recording paths with
// ordo-one/malloc-interposer. Run it with the interposer preloaded (the allocation test and
// bench/record.sh do):
//   LD_PRELOAD=.build/debug/libMallocInterposerSwift.so .build/debug/loadshear-allocations
// Prints `name=allocations` lines; every figure must be 0.
import LoadshearMetrics
import MallocInterposerSwift

let iterations = 100_000

/// Allocations made by `body`, after one warm-up call (first use may set things up).
func allocations(_ body: () -> Void) -> Int {
    body()
    MallocInterposerSwift.initialize()
    MallocInterposerSwift.hook()
    body()
    MallocInterposerSwift.unhook()
    return MallocInterposerSwift.getStatistics().mallocCount
}

let counters = ShardCounters()
let recorder = LatencyRecorder()
var sink = 0

let counterAdds = allocations {
    for i in 0..<iterations { counters.add(.bytesSent, i & 1023) }
}
let kinds = LatencySet.Kind.allCases
let latencyRecords = allocations {
    for i in 0..<iterations {
        recorder.record(kinds[i % kinds.count], nanoseconds: UInt64(1000 + (i & 0xFFFFF)))
    }
}
// The snapshot hand-off on the shard's side: take the filled set, record into the spare,
// get the cleared one back (the reader clears it off the loop; here it is counted too).
let takeWithSpare = allocations {
    var t = recorder.take()
    sink &+= Int(t.send.totalCount)
    t.reset()
    recorder.recycle(t)
}
let interposed = allocations { sink &+= [1, 2, 3].count }

print("counter_add_allocations=\(counterAdds)")
print("latency_record_allocations=\(latencyRecords)")
print("take_with_spare_allocations=\(takeWithSpare)")
// A control: an array literal allocates, so 0 above means counted and none made.
print("control_allocations=\(interposed)")
if sink == 42 { print("") }
