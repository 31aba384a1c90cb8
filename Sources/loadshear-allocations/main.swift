// Counts the heap allocations of Loadshear's per-packet recording paths with
// ordo-one/malloc-interposer. Run it with the interposer preloaded (the allocation test and
// bench/record.sh do):
//   LD_PRELOAD=.build/debug/libMallocInterposerSwift.so .build/debug/loadshear-allocations
// Prints `name=allocations` lines; every figure must be 0. Given handler modules as
// arguments (`heartbeat.wasm heartbeat-fast.wasm`), it also prints the allocations of one
// frame (header and message) through each, `handler_frame_allocations=<module>:<per frame>`:
// those are WasmKit's own (its result arrays, per call), so fewer calls mean fewer.
import Foundation
import LoadshearHandlers
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
// The snapshot hand-off on the shard's side: take the filled set, record into the spare
// (every kind), get the cleared one back. The reader clears it on its own loop, not counted:
// each histogram that has values takes a copy of a zeroed template there.
let takeWithSpare = allocations {
    var t = recorder.take()
    for i in 0..<kinds.count { recorder.record(kinds[i], nanoseconds: UInt64(2000 + i)) }
    sink &+= Int(t.send.totalCount)
    MallocInterposerSwift.unhook()
    t.reset()
    MallocInterposerSwift.hook()
    recorder.recycle(t)
}
let interposed = allocations { sink &+= [1, 2, 3].count }

print("counter_add_allocations=\(counterAdds)")
print("latency_record_allocations=\(latencyRecords)")
print("take_with_spare_allocations=\(takeWithSpare)")
// A control: an array literal allocates, so 0 above means counted and none made.
print("control_allocations=\(interposed)")
for path in CommandLine.arguments.dropFirst() {
    let bytes = [UInt8](FileManager.default.contents(atPath: path) ?? Data())
    guard let handler = try? WasmHandlerFactory(bytes: bytes, log: { _ in }).makeHandler() else {
        print("cannot load \(path)")
        exit(1)
    }
    let frame: [UInt8] = [0, 0, 0, 1, 0, 0, 0, 16] + [UInt8](repeating: 7, count: 16)
    let frames = 10_000
    let n = allocations {
        frame.withUnsafeBytes { f in
            for _ in 0..<frames {
                if handler.readsHeaders { _ = handler.bodyLength(header: UnsafeRawBufferPointer(rebasing: f[0..<8])) }
                _ = handler.handle(f) { sink &+= $0.count }
            }
        }
    }
    print("handler_frame_allocations=\((path as NSString).lastPathComponent):\(Double(n) / Double(frames))")
}
if sink == 42 { print("") }
