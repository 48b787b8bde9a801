from prose_sim.cli import main

raise SystemExit(main())
