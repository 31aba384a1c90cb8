import WAT

/// Handler modules as WebAssembly text: a well-behaved echo, and hostile ones.
enum Modules {
    /// A module with the contract's exports, a bump allocator that rewinds on dealloc, and
    /// the given handle_body body (params $p, $n; result i64).
    static func module(body: String, extra: String = "", alloc: String? = nil, memoryPages: Int = 1) -> [UInt8] {
        let allocBody = alloc ?? "global.get $top global.get $top local.get 0 i32.add global.set $top"
        let text = """
            (module
              (memory (export "memory") \(memoryPages))
              (global $top (mut i32) (i32.const 1024))
              (func $alloc (export "alloc") (param i32) (result i32) \(allocBody))
              (func (export "dealloc") (param i32 i32) i32.const 1024 global.set $top)
              (func (export "handle_body") (param $p i32) (param $n i32) (result i64) \(body))
              \(extra)
            )
            """
        return try! wat2wasm(text)
    }

    /// Replies with the input unchanged (alloc a copy, memory.copy, pack).
    static let echo = module(
        body: """
            (local $o i32)
            local.get $n call $alloc local.set $o
            local.get $o local.get $p local.get $n memory.copy
            local.get $n i64.extend_i32_u i64.const 32 i64.shl
            local.get $o i64.extend_i32_u i64.or
            """)

    /// Traps when the first byte of the message is 1, echoes otherwise.
    static func trapsOnOne(_ trap: String) -> [UInt8] {
        module(
            body: """
                (local $o i32)
                local.get $p i32.load8_u i32.const 1 i32.eq
                if \(trap) end
                local.get $n call $alloc local.set $o
                local.get $o local.get $p local.get $n memory.copy
                local.get $n i64.extend_i32_u i64.const 32 i64.shl
                local.get $o i64.extend_i32_u i64.or
                """, extra: "(func $recurse (result i32) call $recurse)")
    }

    static let unreachable = trapsOnOne("unreachable")
    static let outOfBounds = trapsOnOne("i32.const 0x7fffffff i32.load drop")
    static let divideByZero = trapsOnOne("i32.const 1 i32.const 0 i32.div_u drop")
    static let stackExhaustion = trapsOnOne("call $recurse drop")
    static let infiniteLoop = trapsOnOne("(loop $l br $l)")
    static let allocReturnsZero = module(body: "i64.const 0", alloc: "i32.const 0")
    static let allocOutOfMemory = module(body: "i64.const 0", alloc: "i32.const 65530")
    /// Output pointer far outside memory.
    static let badOutputPointer = module(body: "i64.const 0x0000001000100000")
    /// Output size 4 GiB - 1.
    static let hugeOutputSize = module(body: "i64.const 0xFFFFFFFF00000400")
    /// Imports a host function: rejected at plan time.
    static let imports = try! wat2wasm(#"(module (import "env" "f" (func)) (memory (export "memory") 1))"#)
    /// alloc takes an i64: a signature error.
    static let wrongSignature = try! wat2wasm(
        """
        (module (memory (export "memory") 1)
          (func (export "alloc") (param i64) (result i32) i32.const 8)
          (func (export "dealloc") (param i32 i32))
          (func (export "handle_body") (param i32 i32) (result i64) i64.const 0))
        """)
    static let noMemory = try! wat2wasm(
        """
        (module
          (func (export "alloc") (param i32) (result i32) i32.const 8)
          (func (export "dealloc") (param i32 i32))
          (func (export "handle_body") (param i32 i32) (result i64) i64.const 0))
        """)
}
