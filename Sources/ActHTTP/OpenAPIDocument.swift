internal import Foundation
import Logging

/// The OpenAPI 3.1 description of the API, `Resources/openapi.yaml`: the one copy, bundled with the
/// module and served at `/openapi.yaml`.
enum OpenAPIDocument {
    /// The document's bytes; `nil` (logged) when the resource bundle is missing from the installation.
    static func load(logger: Logger) -> [UInt8]? {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml", subdirectory: "Resources"),
            let data = try? Data(contentsOf: url)
        else {
            logger.error("the OpenAPI document is missing from the ActHTTP resource bundle; /openapi.yaml answers 500")
            return nil
        }
        return Array(data)
    }
}
