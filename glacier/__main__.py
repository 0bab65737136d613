"""`python -m glacier` (and `accelerate launch -m glacier`) entry point."""

from glacier.cli import main

if __name__ == "__main__":
    main()
