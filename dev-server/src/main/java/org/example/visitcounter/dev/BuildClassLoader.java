package org.example.visitcounter.dev;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Path;

/**
 * One build's class loader: the project's classes and resources from this build, child-first (the
 * dev server's class path may hold an older web-app), everything else from the parent, loaded once.
 */
final class BuildClassLoader extends URLClassLoader {
    private static final String PROJECT = "org.example.visitcounter.";
    private static final String DEV_SERVER = "org.example.visitcounter.dev.";

    BuildClassLoader(Path classes, Path resources, ClassLoader parent) {
        super("build", new URL[] {url(classes), url(resources)}, parent);
    }

    @Override
    protected Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
        if (!name.startsWith(PROJECT) || name.startsWith(DEV_SERVER)) {
            return super.loadClass(name, resolve);
        }
        synchronized (getClassLoadingLock(name)) {
            Class<?> loaded = findLoadedClass(name);
            if (loaded == null) {
                loaded = findClass(name); // never the parent's copy: a deleted class must stay deleted
            }
            if (resolve) {
                resolveClass(loaded);
            }
            return loaded;
        }
    }

    @Override
    public URL getResource(String name) {
        URL own = findResource(name);
        return own != null ? own : super.getResource(name);
    }

    private static URL url(Path dir) {
        try {
            return dir.toUri().toURL();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
