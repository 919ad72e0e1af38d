import ArgumentParser
import Foundation
import TrellisWire

/// JSON text to `Value`, for configs given on the command line.
enum JSONValue {
    static func parse(_ text: String, what: String) throws -> Value {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
        } catch {
            throw ValidationError("\(what) is not valid JSON: \(error.localizedDescription)")
        }
        return convert(object)
    }

    private static func convert(_ object: Any) -> Value {
        switch object {
        case let number as NSNumber:
            // JSONSerialization makes booleans NSNumbers of type char ('c'); it never makes other chars.
            if String(cString: number.objCType) == "c" { return .bool(number.boolValue) }
            let double = number.doubleValue
            if double.rounded() == double, let int = Int64(exactly: double) { return .int(int) }
            return .float(double)
        case let string as String:
            return .string(string)
        case let array as [Any]:
            return .array(array.map(convert))
        case let dictionary as [String: Any]:
            return .map(dictionary.mapValues(convert))
        default:
            return .nil
        }
    }
}
