import ArgumentParser

/// The exit codes the README and `--help` promise, by name.
extension ExitCode {
    /// 1: the run could not start or did not do its job — event loops, a report file that
    /// cannot be written, a run in which no session connected.
    package static let runtimeFailure = ExitCode(1)
    /// 2: the script or the plan is invalid (located diagnostics on stderr); for `check`,
    /// the module does not meet the contract.
    package static let invalidScript = ExitCode(2)
    /// 3: endpoints beyond loopback and no acknowledgement.
    package static let notAcknowledged = ExitCode(3)
    /// 4: (ext) the run finished but an EXPECT threshold failed.
    package static let thresholdFailed = ExitCode(4)
    /// 64 (`EX_USAGE`): a command-line usage error; ArgumentParser's own `validationFailure`.
    package static let usage = ExitCode.validationFailure

    /// 128 + the signal: a second stop signal ended the run at once.
    package static func interrupted(by signal: Int32) -> ExitCode { ExitCode(128 + signal) }
}
