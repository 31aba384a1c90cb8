import LoadshearCommands

@main
struct Main {
    static func main() async {
        Console.ignoreBrokenPipes()
        await LoadshearCommand.main()
    }
}
