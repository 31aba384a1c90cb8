import LoadshearCommands

@main
struct Main {
    static func main() async {
        Console.prepareStandardStreams()
        await LoadshearCommand.main()
    }
}
