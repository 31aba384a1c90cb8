/// The `--dry-run` text: everything the run would do, in the order it would do it.
extension Plan {
    /// The whole dry-run text as one string.
    package func dryRunText() -> String {
        var out = ""
        writeDryRun { out += $0 }
        return out
    }

    /// Writes the dry-run text in pieces of about 64 KB, so a plan with millions of actions
    /// is printed without ever holding its whole text.
    package func writeDryRun(_ write: (String) -> Void) {
        var out = ""
        func line(_ s: String = "") {
            out += s
            out += "\n"
            if out.utf8.count >= 65_536 {
                write(out)
                out = ""
            }
        }
        defer { if !out.isEmpty { write(out) } }
        let s = settings
        line("Loadshear plan: \(scriptPath)")
        line()
        line("Settings '\(name)'")
        line("  session       \(s.session.rawValue)")
        if let tls = s.tls {
            var parts = [tls.serverName.map { "server name \"\($0)\" (SNI)" } ?? "server name: each endpoint's host"]
            if tls.verify {
                parts.append("verify against " + (tls.ca.map { "CA \($0.shown)" } ?? "the system trust store"))
            } else {
                parts.append("no verification (VERIFY = \"false\")")
            }
            if let cert = tls.certificate { parts.append("client certificate \(cert.shown)") }
            if !tls.alpn.isEmpty { parts.append("ALPN " + tls.alpn.joined(separator: ", ")) }
            line("  tls           " + parts.joined(separator: "; "))
        }
        line("  port          \(s.port)")
        if s.read {
            if s.session.isStream {
                line("  read          true (header \(s.headerSize ?? 0) bytes, body max \(s.bodyMax ?? 0) bytes)")
            } else {
                line("  read          true (each datagram whole, max \(s.bodyMax ?? 0) bytes)")
            }
            if s.session.isStream {
                let length: String
                if let hl = s.headerLength {
                    length =
                        "header bytes \(hl.offset)..<\(hl.offset + hl.size), unsigned \(hl.bigEndian ? "big" : "little")-endian (HEADER_LENGTH)"
                } else if case .wasm(let w) = handler {
                    let f = w.headerFunction
                    length = "from the module's \(f)\(f == "body_length" ? " (fast path)" : "")"
                } else {
                    length = "none: header-only frames of \(s.headerSize ?? 0) bytes (NOP without HEADER_LENGTH)"
                }
                line("  body length   \(length)")
            }
        } else {
            line("  read          false")
        }
        if let r = s.response {
            switch r {
            case .field(let f):
                line(
                    "  response      request id at frame bytes \(f.offset)..<\(f.offset + f.size), \(f.bigEndian ? "big" : "little")-endian (RESPONSE)"
                )
            case .inOrder:
                line("  response      in order: each reply answers the oldest unanswered request (RESPONSE)")
            }
            line(
                "  timeout       \(DurationLiteral.format(s.responseTimeout)) (a request without its reply by then is a timeout)"
            )
        }
        if let q = s.sequence {
            line(
                "  sequence      number at message bytes \(q.offset)..<\(q.offset + q.size), \(q.bigEndian ? "big" : "little")-endian: loss, reorder, duplicates and jitter of what is read (SEQUENCE)"
            )
        }
        line("  repeat        \(s.repeatPayloads)")
        line(
            s.sampleRate == 1
                ? "  sample rate   every packet"
                : "  sample rate   first packet and every \(Self.ordinal(s.sampleRate))")
        line("  shards        \(s.shardCount)")
        line("  connect window \(s.connectWindow) connects in flight per shard")
        switch handler {
        case .nop:
            line("  handler       NOP")
        case .wasm(let w):
            line("  handler       \(w.path) (\(w.bytes.count) bytes, \(w.resolvedPath))")
            if !w.exports.isEmpty {
                line("  exports       " + w.exports.joined(separator: ", "))
                // UDP hands each datagram whole: no header call, as with HEADER_LENGTH.
                line("  handler path  \(w.pathDescription(headerLength: s.headerLength != nil || !s.session.isStream))")
            }
            line("  handler memory at most \(SizeLiteral.describe(s.handlerMemory)) per instance (HANDLER_MEMORY)")
        }
        line()
        let addrs = addresses
        line("Endpoints (\(addrs.count) address\(addrs.count == 1 ? "" : "es"), used round-robin by session index)")
        for e in endpoints {
            line("  \(e.host) -> " + e.addresses.map(\.description).joined(separator: ", "))
        }
        line()
        if let seg = segment {
            line(
                "Segment \(seg.index) of \(seg.count) (--segment \(seg.index)/\(seg.count)): sessions \(Self.describe(seg.block))"
            )
            line("  every action applies to the part of its range inside this block")
            let counted = sends.indices.filter { sends[$0].counter != nil }
            if !counted.isEmpty {
                line("  COUNTER lanes (this process's k-th copy → the single run's copy number; value = copy × step)")
                for si in counted {
                    line(
                        "    SEND line \(sends[si].line) \(packets[sends[si].packet].id): \(seg.lanes[si].description)")
                }
            }
            line()
        }
        if !s.sources.isEmpty {
            let shown = sessionsPerSource.prefix(8).map { ip, n in
                "\(ip) (\(n) session\(n == 1 ? "" : "s"))"
            }
            let more = s.sources.count > 8 ? ", … (\(s.sources.count) in all)" : ""
            line(
                "Sources (\(s.sources.count) local address\(s.sources.count == 1 ? "" : "es"), bound round-robin by session number)"
            )
            line("  " + shown.joined(separator: ", ") + more)
            line()
        }
        line(
            "Sessions \(sessionCount)\(segment == nil ? "" : ", \(ownSessions.count) in this segment,") on \(shards.count) shard\(shards.count == 1 ? "" : "s")"
        )
        for (i, r) in shards.enumerated() {
            line("  shard \(i)  sessions \(Self.describe(r))")
        }
        line()
        if !packets.isEmpty {
            line("Packets")
            let idWidth = packets.map(\.id.count).max() ?? 0
            for p in packets {
                let hex = p.bytes.prefix(16).map { Self.hex($0) }.joined(separator: " ")
                let more = p.bytes.count > 16 ? " …" : ""
                let expanded = p.path.contains("$") ? " (= \(p.resolvedPath))" : ""
                line("  \(Self.pad(p.id, idWidth))  \(p.bytes.count) bytes  \(p.path)\(expanded)  [\(hex)\(more)]")
            }
            line()
        }
        line("Timeline (\(actions.count) action\(actions.count == 1 ? "" : "s"), absolute start times)")
        // Start times only grow, so the last one is the widest.
        let timeWidth = actions.last.map { Self.clock($0.at).count } ?? 0
        for a in actions {
            var detail = ""
            if case .send(let si) = a.kind {
                let spec = sends[si]
                detail = " \(packets[spec.packet].id) COPIES \(spec.copies)"
                if let c = spec.counter {
                    detail += " COUNTER \(c.offset):\(c.length) \(c.order.rawValue) step \(c.step)"
                }
                if let t = spec.timestamp {
                    detail += " TIMESTAMP \(t.offset):\(t.length) \(t.order.rawValue) \(t.unit.rawValue)"
                }
            }
            if case .pace(let spec) = a.kind {
                detail = " \(spec.description) per session"
            }
            if case .churn(let period) = a.kind {
                detail =
                    " EVERY \(DurationLiteral.format(period)) (each session closes and reconnects, spread over the period)"
            }
            if case .disconnect(let skipped, let reset) = a.kind {
                if reset { detail = " \"reset\" (RST, not FIN)" }
                if skipped > 0 { detail += " (\(skipped) never connected: skipped)" }
            }
            if let seg = segment {
                let here = a.sessions.clamped(to: seg.block)
                detail += here.isEmpty ? " [none in this segment]" : " [here \(here.lowerBound):\(here.upperBound)]"
            }
            let name = Self.pad(a.kind.name, 10)
            line(
                "  \(Self.pad(Self.clock(a.at), timeWidth, right: true))  \(name) sessions \(Self.describe(a.sessions))\(detail)  (line \(a.line), +\(DurationLiteral.format(a.offset)))"
            )
        }
        line("  run ends after the last action, at \(Self.clock(duration))")
        line()
        line("Payloads per session")
        var printed = false
        for (whole, count, sendsInList) in payloadRuns() {
            let r = whole.clamped(to: ownSessions)
            if r.isEmpty { continue }
            printed = true
            let parts = sendsInList.map { "\(packets[sends[$0].packet].id)×\(sends[$0].copies)" }
            let list = parts.isEmpty ? "" : " (" + parts.joined(separator: ", ") + ")"
            line("  sessions \(Self.describe(r)): \(count) payload\(count == 1 ? "" : "s")\(list)")
        }
        if !printed { line("  none") }
        let phases = pacePhases()
        if !phases.isEmpty {
            line()
            line("Pace (intended send times never slip; response time is measured from them)")
            for p in phases {
                let n = Double(p.sessions.clamped(to: ownSessions).count)
                if n == 0 { continue }
                let expected = expectedPayloads(p) * n
                var rates = "\(p.spec.description) per session, \(PaceSpec.format(p.spec.rate * n))/s in all"
                if let target = p.spec.target { rates += " → \(PaceSpec.format(target * n))/s" }
                line(
                    "  line \(p.line): sessions \(Self.describe(p.sessions)) \(Self.clock(p.start)) → \(Self.clock(p.end)): \(rates), ~\(Int64(expected.rounded())) payloads"
                )
            }
        }
        if !expectations.isEmpty {
            line()
            line(
                segment == nil
                    ? "Thresholds (EXPECT: checked on the totals at the end; exit code 4 when one fails)"
                    : "Thresholds (EXPECT: checked by `loadshear merge` on all segments' reports; exit code 4 when one fails)"
            )
            for e in expectations { line("  \(e.text)  (line \(e.line))") }
        }
    }

    /// Runs of consecutive sessions with the same payload list, found from the SEND range
    /// boundaries so it stays fast with many sessions and many actions.
    /// Each run is its sessions, the payloads per session, and the indices into ``sends`` of
    /// the SENDs that make up its list.
    package func payloadRuns() -> [(Range<Int>, Int, [Int])] {
        var cuts = Set([0, sessionCount])
        for s in sends {
            cuts.insert(s.sessions.lowerBound)
            cuts.insert(s.sessions.upperBound)
        }
        let points = cuts.sorted()
        var runs: [(Range<Int>, Int, [Int])] = []
        for (lo, hi) in zip(points, points.dropFirst()) where lo < hi {
            let list = sends.indices.filter { sends[$0].sessions.contains(lo) }
            let count = list.reduce(0) { $0 + sends[$1].copies }
            if let last = runs.last, last.2 == list, last.0.upperBound == lo {
                runs[runs.count - 1].0 = last.0.lowerBound..<hi
            } else {
                runs.append((lo..<hi, count, list))
            }
        }
        return runs
    }

    /// (ext) SOURCES: each local address with the sessions of this process that bind it
    /// (session s binds source s mod count).
    package var sessionsPerSource: [(address: String, sessions: Int)] {
        let count = settings.sources.count
        return settings.sources.enumerated().map { i, ip in (ip, Self.countCongruent(ownSessions, i, count)) }
    }

    /// How many numbers in `r` are ≡ `i` (mod `m`).
    package static func countCongruent(_ r: Range<Int>, _ i: Int, _ m: Int) -> Int {
        guard !r.isEmpty, m > 0 else { return 0 }
        func upTo(_ n: Int) -> Int { n <= i ? 0 : (n - i - 1) / m + 1 }  // in 0..<n
        return upTo(r.upperBound) - upTo(r.lowerBound)
    }

    /// `0:50 (0-49, 50 sessions)`: the script's half-open form, the inclusive form and the size.
    static func describe(_ r: Range<Int>) -> String {
        let n = r.count
        let inclusive = n == 1 ? "\(r.lowerBound)" : "\(r.lowerBound)-\(r.upperBound - 1)"
        return "\(r.lowerBound):\(r.upperBound) (\(inclusive), \(n) session\(n == 1 ? "" : "s"))"
    }

    /// `t=1.250s`: seconds with millisecond precision (finer when needed).
    static func clock(_ ns: Nanoseconds) -> String {
        let ms = ns / 1_000_000
        let sub = ns % 1_000_000
        var s = "\(ms / 1000)." + String(String(ms % 1000 + 1000).dropFirst())
        if sub != 0 {
            var frac = String(String(sub + 1_000_000).dropFirst())
            while frac.hasSuffix("0") { frac.removeLast() }
            s += frac
        }
        return "t=\(s)s"
    }

    /// Two lower-case hex digits.
    /// `2nd`, `3rd`, `11th`, `100th`.
    static func ordinal(_ n: Int) -> String {
        let suffix: String
        switch (n % 10, n % 100) {
        case (_, 11...13): suffix = "th"
        case (1, _): suffix = "st"
        case (2, _): suffix = "nd"
        case (3, _): suffix = "rd"
        default: suffix = "th"
        }
        return "\(n)\(suffix)"
    }

    static func hex(_ b: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(b >> 4)], digits[Int(b & 15)]])
    }

    /// `s` padded with spaces to `width` characters: on the right, or with `right` on the left.
    static func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - s.count))
        return right ? fill + s : s + fill
    }
}
