/// A value kept out of line, behind one pointer. A session's state that most runs never use
/// (PACE's schedule, RESPONSE's requests, SEQUENCE's tracker, a TLS handshake) costs an idle
/// session 8 bytes instead of its size, which counts at hundreds of thousands of sessions
/// (bench/connect.sh, RSS per idle session). The value is mutated in place
/// (`box.value.mutate()`), so using it costs no allocation beyond the box's own.
final class OutOfLine<Value> {
    var value: Value
    init(_ value: Value) { self.value = value }
}
