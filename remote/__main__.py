from remote.cli import main

main()
