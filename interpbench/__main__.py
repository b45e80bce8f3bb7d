from interpbench.cli.main import main

main()
