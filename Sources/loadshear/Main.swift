import LoadshearCommands

/// The `loadshear` executable: prepares the standard streams, then runs the command line.
@main
struct Main {
    static func main() async {
        Console.prepareStandardStreams()
        await LoadshearCommand.main()
    }
}
