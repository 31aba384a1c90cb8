import LoadshearScript
import LoadshearTestSupport
import Testing

/// (ext) SOURCES, CONNECT_WINDOW, DISCONNECT "reset" and the preflight's arithmetic.
@Suite struct SourcesTests {
    func options(local: Set<String> = []) -> PlanOptions {
        var o = testOptions()
        o.sourceCheck = { ip in ip.hasPrefix("127.") || local.contains(ip) ? nil : "not an address of this host" }
        return o
    }

    @Test func rangesExpandAndMustBeLocal() throws {
        let (p, rendered, _) = plan(
            script(settings: "    SOURCES { 127.0.0.2, 127.0.0.10-127.0.0.12 }\n    CONNECT_WINDOW = 64"),
            options: options())
        let planned = try #require(p, "\(rendered)")
        #expect(planned.settings.sources == ["127.0.0.2", "127.0.0.10", "127.0.0.11", "127.0.0.12"])
        #expect(planned.settings.connectWindow == 64)
        let (bad, out, _) = plan(
            script(settings: "    SOURCES { 127.0.0.9-127.0.0.3, 10.1.1.1, 1.2.3 }\n    CONNECT_WINDOW = 0"),
            options: options())
        #expect(bad == nil)
        #expect(out.contains("the range '127.0.0.9-127.0.0.3' starts after it ends"), "\(out)")
        #expect(out.contains("source address 10.1.1.1 cannot be used: not an address of this host"), "\(out)")
        #expect(out.contains("'1.2.3' is not an IP address"), "\(out)")
        #expect(out.contains("CONNECT_WINDOW must be 1 to 65536"), "\(out)")
    }

    /// Addresses a connection cannot come from, though the kernel binds them: multicast,
    /// broadcast, wildcard, IPv4-mapped IPv6 (each located at its entry).
    @Test func onlyUnicastAddressesAreSources() {
        for (entry, message) in [
            ("239.1.2.3", "239.1.2.3: a multicast address is no source"),
            ("255.255.255.255", "the broadcast address is no source"),
            ("0.0.0.0", "this network"),
            ("239.255.255.254-240.0.0.1", "the range '239.255.255.254-240.0.0.1' holds 239.255.255.254: a multicast"),
            ("\"::\"", "the unspecified address is no source"),
            ("\"ff02::1\"", "a multicast address is no source"),
            ("\"::ffff:127.0.0.1\"", "an IPv4-mapped address is IPv4: write it as 127.0.0.1"),
        ] {
            let (p, out, _) = plan(script(settings: "    SOURCES { \(entry) }"), options: options(local: [entry]))
            #expect(p == nil && out.contains(message), "\(entry): \(out)")
        }
    }

    @Test func sourcesMustMatchTheEndpointsAndTCP() {
        let (v6, out, _) = plan(script(settings: "    SOURCES { \"::1\" }"), options: options(local: ["::1"]))
        #expect(v6 == nil)
        #expect(out.contains("SOURCES are IPv6 but endpoint '127.0.0.1' is 127.0.0.1 (IPv4)"), "\(out)")
        let udp = script(settings: "    SOURCES { 127.0.0.2 }").replacingOccurrences(of: "\"TCP\"", with: "\"UDP\"")
        let (u, uout, _) = plan(udp, options: options())
        #expect(u == nil)
        #expect(uout.contains("SOURCES binds TCP sessions"), "\(uout)")
    }

    @Test func disconnectTakesReset() throws {
        let (p, rendered, _) = plan(
            script(actions: "    CONNECT 0:10\n    DISCONNECT 0:5 \"reset\"\n    DISCONNECT 5:10"), options: options())
        let planned = try #require(p, "\(rendered)")
        let kinds = planned.actions.compactMap { a -> Bool? in
            if case .disconnect(_, let reset) = a.kind { return reset }
            return nil
        }
        #expect(kinds == [true, false])
        let (bad, out, _) = plan(script(actions: "    CONNECT 0:10\n    DISCONNECT 0:5 \"rst\""), options: options())
        #expect(bad == nil)
        #expect(out.contains("\"reset\""), "\(out)")
    }

    /// 300 sessions to one address through a 100-port range: refused with the count that
    /// fits; three sources make each pair 100 and it fits. The fd check counts the peak
    /// (sessions disconnected before others connect do not add up).
    @Test func preflightCountsPortsPerPairAndThePeak() throws {
        let limits = Limits(descriptors: 1000, hardDescriptors: 1000, openNow: 10, ephemeralPorts: 100...199)
        let one = try #require(
            plan(script(actions: "    CONNECT 0:300", create: "    CREATE 300"), options: options()).0)
        let p1 = one.preflight(limits)
        #expect(p1.problems.count == 1)
        #expect(p1.problems.first?.message.contains("300 sessions connect from the kernel's source address") == true)
        #expect(p1.problems.first?.message.contains("at most 100 fit") == true)
        let three = try #require(
            plan(
                script(
                    settings: "    SOURCES { 127.0.0.2-127.0.0.4 }", actions: "    CONNECT 0:300",
                    create: "    CREATE 300"), options: options()
            ).0)
        #expect(three.preflight(limits).problems.isEmpty)
        #expect(three.preflight(limits).busiestPair?.sessions == 100)
        // 600 sessions in two waves of 300: the peak is 300, not 600.
        let waves = try #require(
            plan(
                script(
                    settings: "    SOURCES { 127.0.0.2-127.0.0.7 }",
                    actions: "    CONNECT 0:300\n    DISCONNECT 0:300\n    CONNECT 300:600", create: "    CREATE 600"),
                options: options()
            ).0)
        let pw = waves.preflight(limits)
        #expect(pw.peakSessions == 300)
        #expect(pw.problems.isEmpty)
        let tight = Limits(descriptors: 200, hardDescriptors: 200, openNow: 10, ephemeralPorts: nil)
        let pt = waves.preflight(tight)
        #expect(
            pt.problems.first?.message.contains(
                "at most \(200 - 10 - Preflight.engineDescriptors(shards: 2)) sessions fit") == true)
    }
}
