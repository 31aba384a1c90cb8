import LoadshearEngine
import LoadshearHandlers
import LoadshearScript

extension PlanOptions {
    /// Checks the files a script names beyond packets at plan time: the WASM handler's
    /// contract and (ext) the TLS block's PEM files.
    mutating func inspectFiles() {
        handlerInspector = WasmModuleInspector()
        tlsInspector = TLSFileInspector()
    }
}
