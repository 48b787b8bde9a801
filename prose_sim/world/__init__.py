"""What is simulated: tasks, personas (simulated users) and documents."""
