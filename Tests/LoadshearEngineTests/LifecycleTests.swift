import Testing

@testable import LoadshearEngine

/// The session lifecycle without sockets: every event in every state.
@Suite struct SessionLifecycleTests {
    func connected() -> SessionLifecycle {
        var l = SessionLifecycle()
        do {
            let r = l.queue()
            #expect(r)
        }
        do {
            let r = l.startConnect()
            #expect(r)
        }
        do {
            let r = l.connected()
            #expect(r == .start)
        }
        return l
    }

    @Test func aSessionNeverConnectedIsSkippedByDisconnect() {
        var l = SessionLifecycle()
        do {
            let r = l.disconnect()
            #expect(r == .none)
        }
        #expect(l.state == .idle)
        #expect(!l.isLive)
    }

    @Test func disconnectWhileQueuedEndsItWithoutAnAttempt() {
        var l = SessionLifecycle()
        do {
            let r = l.queue()
            #expect(r)
        }
        do {
            let r = l.queue()
            #expect(!r, "queued once")
        }
        do {
            let r = l.disconnect()
            #expect(r == .ended)
        }
        #expect(l.state == .closed(.notStarted))
        do {
            let r = l.startConnect()
            #expect(!r, "its slot is not used")
        }
    }

    @Test func disconnectWhileConnectingCancelsTheConnect() {
        var l = SessionLifecycle()
        _ = l.queue()
        _ = l.startConnect()
        do {
            let r = l.disconnect()
            #expect(r == .cancelConnect)
        }
        do {
            let r = l.disconnect()
            #expect(r == .none, "once")
        }
        do {
            let r = l.connectFailed()
            #expect(r == .cancelled)
        }
        #expect(l.state == .closed(.cancelled))
        do {
            let r = l.channelClosed()
            #expect(r == nil)
        }
    }

    @Test func aConnectThatCompletesAfterTheCancelIsCountedThenClosed() {
        var l = SessionLifecycle()
        _ = l.queue()
        _ = l.startConnect()
        _ = l.disconnect()
        do {
            let r = l.connected()
            #expect(r == .startThenClose)
        }
        do {
            let r = l.channelClosed()
            #expect(r == .us)
        }
        do {
            let r = l.connectFailed()
            #expect(r == nil, "a late failure of the connect future changes nothing")
        }
    }

    @Test func aFailedConnectIsFailed() {
        var l = SessionLifecycle()
        _ = l.queue()
        _ = l.startConnect()
        do {
            let r = l.connectFailed()
            #expect(r == .failed)
        }
        do {
            let r = l.disconnect()
            #expect(r == .none)
        }
    }

    @Test func weCloseIt() {
        var l = connected()
        do {
            let r = l.disconnect()
            #expect(r == .close)
        }
        do {
            let r = l.close(.peerReset)
            #expect(r == false, "an error during our close does not change the reason")
        }
        do {
            let r = l.channelClosed()
            #expect(r == .us)
        }
        do {
            let r = l.channelClosed()
            #expect(r == nil, "counted once")
        }
    }

    @Test func theFirstReasonWins() {
        var l = connected()
        do {
            let r = l.close(.protocolError)
            #expect(r)
        }
        do {
            let r = l.close(.us)
            #expect(!r)
        }
        do {
            let r = l.disconnect()
            #expect(r == .none)
        }
        do {
            let r = l.channelClosed()
            #expect(r == .protocolError)
        }
    }

    @Test(arguments: [CloseReason.peerReset, .localError])
    func errorsClassifyTheClose(_ reason: CloseReason) {
        var l = connected()
        do {
            let r = l.close(reason)
            #expect(r)
        }
        do {
            let r = l.channelClosed()
            #expect(r == reason)
        }
    }

    @Test func aClosedChannelWithNoReasonWasThePeers() {
        var l = connected()
        do {
            let r = l.channelClosed()
            #expect(r == .peerFin)
        }
    }

    @Test func afterAFinOurCloseIsStillTheServers() {
        var l = connected()
        do {
            let r = l.peerFinished()
            #expect(r)
        }
        do {
            let r = l.peerFinished()
            #expect(!r, "counted once")
        }
        #expect(l.isActive, "we keep sending")
        do {
            let r = l.disconnect()
            #expect(r == .close)
        }
        do {
            let r = l.channelClosed()
            #expect(r == .peerFin)
        }
    }

    /// DISCONNECT "reset" after the server's FIN: our RST ended the connection, so it is ours
    /// (resetsSent counts among the closes by us).
    @Test func ourResetAfterAFinIsOurs() {
        var l = connected()
        _ = l.peerFinished()
        do {
            let r = l.disconnect(reset: true)
            #expect(r == .close)
        }
        do {
            let r = l.channelClosed()
            #expect(r == .us)
        }
    }

    /// (ext) CHURN's turn closes a session the server half-closed: it counts as the server's,
    /// and reconnects all the same; a connection a reset ended does not.
    @Test func churnReconnectsAfterAHalfCloseButNotAfterAReset() {
        var l = connected()
        _ = l.peerFinished()
        do {
            let r = l.close(.us)
            #expect(r)
        }
        do {
            let r = l.channelClosed()
            #expect(r == .peerFin)
        }
        do {
            let r = l.requeue()
            #expect(r)
        }
        #expect(l.state == .queued)
        var reset = connected()
        _ = reset.close(.peerReset)
        _ = reset.channelClosed()
        do {
            let r = reset.requeue()
            #expect(!r)
        }
    }

    @Test func aResetAfterAFinIsAReset() {
        var l = connected()
        _ = l.peerFinished()
        do {
            let r = l.close(.peerReset)
            #expect(r)
        }
        do {
            let r = l.channelClosed()
            #expect(r == .peerReset)
        }
    }

    @Test func aProtocolErrorAfterAFinIsAProtocolError() {
        var l = connected()
        _ = l.peerFinished()
        do {
            let r = l.close(.protocolError)
            #expect(r)
        }
        do {
            let r = l.channelClosed()
            #expect(r == .protocolError)
        }
    }
}

/// Send accounting without sockets: batches written, failed, and settled on our close.
@Suite struct SendLedgerTests {
    @Test func writtenBatchesCountWhole() {
        var l = SendLedger()
        l.handPackets(count: 3, size: 10)
        let a = l.closeBatch()
        l.replyQueued(size: 4)
        l.replyQueued(size: 6)
        l.handReplies(count: 2, bytes: 10)
        l.handPackets(count: 1, size: 100)
        let b = l.closeBatch()
        do {
            let r = l.written(a)
            #expect(r == .init(bytes: 30, packets: 3))
        }
        do {
            let r = l.written(b)
            #expect(r == .init(bytes: 110, packets: 1, replies: 2))
        }
        #expect(!l.hasUnsettled)
        do {
            let r = l.written(b)
            #expect(r == .init(), "once")
        }
    }

    @Test func aLaterBatchCompletingSettlesTheEarlierOnesToo() {
        var l = SendLedger()
        l.handPackets(count: 1, size: 5)
        _ = l.closeBatch()
        l.handPackets(count: 2, size: 5)
        let b = l.closeBatch()
        do {
            let r = l.written(b)
            #expect(r == .init(bytes: 15, packets: 3))
        }
    }

    @Test func onOurCloseOnlyWholeItemsCount() {
        var l = SendLedger()
        l.handPackets(count: 4, size: 700)  // 2800
        l.replyQueued(size: 10)
        l.replyQueued(size: 30)
        l.handReplies(count: 2, bytes: 40)  // 2840
        l.handPackets(count: 3, size: 333)  // 3839
        _ = l.closeBatch()
        // 3839 handed over, 1000 still buffered: 2839 reached the kernel — 4 packets of 700,
        // the 10-byte reply (2810), 29 bytes of the 30-byte one.
        do {
            let r = l.settle(buffered: 1000)
            #expect(r == .init(bytes: 2839, packets: 4, replies: 1))
        }
        #expect(!l.hasUnsettled)
    }

    @Test func aSettledBatchIgnoresItsLateFailure() {
        var l = SendLedger()
        l.handPackets(count: 2, size: 10)
        let a = l.closeBatch()
        _ = l.settle(buffered: 20)
        do {
            let r = l.failed(a)
            #expect(r == .init())
        }
        do {
            let r = l.written(a)
            #expect(r == .init())
        }
    }

    @Test func theFirstFailedBatchIsUnconfirmedAndTheRestWereNeverWritten() {
        var l = SendLedger()
        l.handPackets(count: 2, size: 10)
        let a = l.closeBatch()
        l.handPackets(count: 5, size: 10)
        let b = l.closeBatch()
        l.handPackets(count: 7, size: 10)
        let c = l.closeBatch()
        do {
            let r = l.written(a)
            #expect(r == .init(bytes: 20, packets: 2))
        }
        do {
            let r = l.failed(b)
            #expect(r == .init(unconfirmedBytes: 50))
        }
        do {
            let r = l.failed(c)
            #expect(r == .init())
        }
        #expect(!l.hasUnsettled)
    }

    @Test func repliesDroppedAtCloseLeaveTheSizesOfTheOthers() {
        var l = SendLedger()
        l.replyQueued(size: 8)
        l.handReplies(count: 1, bytes: 8)
        _ = l.closeBatch()
        l.replyQueued(size: 16)  // queued, never handed over
        l.dropQueuedReplies(1)
        do {
            let r = l.settle(buffered: 0)
            #expect(r == .init(bytes: 8, replies: 1))
        }
    }
}
