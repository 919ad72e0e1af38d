/// The limits every script runs under.
public struct ScriptLimits: Sendable, Equatable {
    /// Lua VM instructions one callback (or the chunk itself) may execute. Checked every
    /// 1,000 instructions; once spent, every further instruction of the callback fails, so a
    /// script cannot escape with its own `pcall`.
    public var instructionBudget: Int64
    /// Bytes the script's VM may hold, libraries included.
    public var memoryCap: Int
    /// Deepest nesting of a value a script may return or send.
    public var maxValueDepth: Int
    /// Most values (table entries, counted recursively) in one returned or sent value.
    public var maxValueElements: Int
    /// Most bytes of strings in one returned or sent value, counting a string each time it
    /// appears: a table holding one big string many times is as big as its encoding.
    public var maxValueBytes: Int

    public init(
        instructionBudget: Int64 = 10_000_000, memoryCap: Int = 64 << 20, maxValueDepth: Int = 32,
        maxValueElements: Int = 1_000_000, maxValueBytes: Int = 64 << 20
    ) {
        self.instructionBudget = instructionBudget
        self.memoryCap = memoryCap
        self.maxValueDepth = maxValueDepth
        self.maxValueElements = maxValueElements
        self.maxValueBytes = maxValueBytes
    }
}
