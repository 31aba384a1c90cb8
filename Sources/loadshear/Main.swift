import LoadshearCommands

@main
struct Main {
    static func main() async {
        await LoadshearCommand.main()
    }
}
